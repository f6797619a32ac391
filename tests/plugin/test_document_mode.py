"""Document mode as a user meets it: options, collection, order, usage errors (no lab)."""

from __future__ import annotations

FIRST = """# First

## 前提条件

### 環境確認

```bash
true
```

## Step 1. One

```bash
true
```

## Step 2. Two

```bash
true
```

## クリーンアップ

```bash
true
```
"""

SECOND = """# Second

## Prerequisites

* Containers `a` and `b` must be running.

## Step 1. Uses the first

```bash
true
```

## Cleanup

```bash
true
```
"""


def test_document_options_are_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*running the workshop's documents*", "*--vlanlb-doc=PATH.md*", "*--vlanlb-doc-timeout*"]
    )


def test_steps_are_items_in_document_order_with_cleanups_last(pytester):
    pytester.makefile(".md", first=FIRST, second=SECOND)
    pytester.makepyfile(test_other="def test_not_collected(): pass")
    result = pytester.runpytest(
        "--collect-only", "-q", "--vlanlb-doc", "first.md", "--vlanlb-doc", "second.md"
    )
    assert result.ret == 0
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "first.md::prerequisites",
        "first.md::step-1",
        "first.md::step-2",
        "second.md::prerequisites",
        "second.md::step-1",
        "second.md::cleanup",
        "first.md::cleanup",
    ]


def test_k_selects_steps(pytester):
    pytester.makefile(".md", first=FIRST)
    result = pytester.runpytest("--collect-only", "-q", "--vlanlb-doc", "first.md", "-k", "step-2")
    assert [line for line in result.outlines if "::" in line] == ["first.md::step-2"]


def test_ini_lists_the_documents(pytester):
    pytester.makefile(".md", first=FIRST, second=SECOND)
    pytester.makeini("[pytest]\nvlanlb_doc =\n    second.md\n    first.md\n")
    result = pytester.runpytest("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids[0] == "second.md::prerequisites"
    assert ids[-1] == "second.md::cleanup"


def test_usage_errors_name_the_fix(pytester):
    pytester.makefile(".md", first=FIRST, empty="# Nothing\n\n## Step 1\n\nProse only.\n")
    pytester.makepyfile(test_other="def test_x(): pass")
    cases = {
        ("--vlanlb-doc", "missing.md"): "--vlanlb-doc missing.md: no such file",
        ("--vlanlb-doc", "empty.md"): "no step to run",
        ("--vlanlb-doc", "first.md", "test_other.py"): "run test files in another pytest call",
        ("--vlanlb-doc", "first.md", "--vlanlb-url", "unix:///x"): "drop --vlanlb-url",
        ("--vlanlb-doc", "first.md", "--vlanlb-doc-timeout", "0"): "positive number",
        ("--vlanlb-doc", "first.md", "-n", "2"): "drop -n",
    }
    for args, message in cases.items():
        result = pytester.runpytest(*args)
        assert result.ret == 4, args  # a usage error, before anything is built
        assert message in "\n".join(result.errlines), (args, result.errlines)
