"""Reading a document: sections, blocks, the shell lexer, and the promises in its words.

The documents here are small ones of our own, written for these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vlanlb.document.bash import ShellSyntaxError, split_commands
from pytest_vlanlb.document.markdown import Fence, Prose, parse_document
from pytest_vlanlb.document.promises import (
    AddressesOn,
    ExactOutput,
    Fails,
    Observed,
    PacketLoss,
    Reply,
    ShowsLine,
    ShowsNames,
    ShowsText,
    read_command,
    read_prose,
    running_containers,
)

DOC = """# A tiny lab

Intro text.

## Prerequisites

- Containers `x` and `y` must be running.

## Step 1. Make a thing

```bash
# make it
make-thing \\
  --big
```

Output should show `10.0.x.x` (eth0) and `10.1.0.1` (eth1).

## Step 2: 確認

```sh
echo hi
```

**Expected result:**

```text
hi
```

## クリーンアップ

```bash
rm-thing
```

## Step 2 again

```bash
true
```
"""


def test_sections_get_step_ids_and_keep_prose_and_blocks_in_order():
    doc = parse_document(DOC, Path("tiny.md"))
    assert doc.title == "A tiny lab"
    assert [s.id for s in doc.sections] == [
        "prerequisites",
        "step-1",
        "step-2",
        "cleanup",
        "step-2-2",
    ]
    step1 = doc.sections[1]
    assert step1.title == "Step 1. Make a thing"
    fence, prose = step1.elements
    assert isinstance(fence, Fence)
    assert fence.lang == "bash"
    assert fence.line == 12
    assert isinstance(prose, Prose)
    assert "`10.1.0.1` (eth1)" in prose.text
    assert doc.sections[3].is_cleanup
    assert [e.lang for e in doc.sections[2].elements if isinstance(e, Fence)] == ["sh", "text"]


def test_lexer_joins_continuations_and_keeps_comments_with_their_command():
    block = "# above\ncmd one \\\n  two  # inline\n# shown: output\n\n# next\nother\n"
    first, second = split_commands(block)
    assert first.parts[0].argv() == ["cmd", "one", "two"]
    assert first.before == ["above"]
    assert first.after == ["shown: output"]
    assert first.comment == "inline"
    assert first.line == 2
    assert first.last_line == 3
    assert second.before == ["next"]
    assert second.after == []


def test_lexer_quotes_spanning_lines_and_here_documents():
    block = "sh -c '\\\n# c\nx=1\n'\ncat <<EOF >out\n$IF line\nEOF\nafter\n"
    quoted, heredoc, after = split_commands(block)
    assert quoted.parts[0].argv() == ["sh", "-c", "\\\n# c\nx=1\n"]
    redirect = heredoc.parts[0].redirects[0]
    assert redirect.op == "<<"
    assert redirect.body == "$IF line\n"
    assert heredoc.text.endswith("EOF")
    assert after.parts[0].argv() == ["after"]


def test_lexer_records_variables_pipes_and_tolerated_failures():
    (pipe,) = split_commands("podman info | grep rootless\n")
    assert pipe.joiners == ["|"]
    assert [p.argv()[0] for p in pipe.parts] == ["podman", "grep"]
    (delete,) = split_commands('ip link delete "$IF.10" 2>/dev/null\n')
    word = delete.parts[0].words[3]
    assert word.variables == ["IF"]
    assert word.literal is None
    assert word.value({"IF": "vlbT"}) == "vlbT.10"
    assert delete.may_fail
    (strict,) = split_commands("ip link delete x 2>err.log\n")
    assert not strict.may_fail
    (tolerant,) = split_commands("ping -c1 h || true\n")
    assert tolerant.may_fail


def test_lexer_word_offsets_cover_the_source():
    block = 'a "b c" d\\ e\n'
    (command,) = split_commands(block)
    assert [block[w.start : w.end] for w in command.parts[0].words] == ["a", '"b c"', "d\\ e"]
    assert command.parts[0].argv() == ["a", "b c", "d e"]


@pytest.mark.parametrize("block", ["echo 'open\n", 'echo "open\n', "cat <<EOF\nno end\n"])
def test_lexer_refuses_what_it_cannot_read(block):
    with pytest.raises(ShellSyntaxError):
        split_commands(block)


def _promises(block: str):
    (command,) = split_commands(block)
    return read_command(command)


@pytest.mark.parametrize(
    ("comment", "percent"),
    [("# 結果: パケットロス 100% (通信不能)", 100), ("# Result: 100% packet loss", 100)],
)
def test_packet_loss_comments_in_both_languages(comment, percent):
    reading = _promises(f"ping -c 2 10.0.0.2\n{comment}\n")
    (loss,) = reading.promises  # said once, not also as a separate "fails"
    assert isinstance(loss, PacketLoss)
    assert loss.percent == percent
    assert loss.expects_failure


def test_failure_announced_above_the_command():
    reading = _promises("# 2. 疎通確認（失敗することを確認）\nping -c 3 h\n")
    assert [type(p) for p in reading.promises] == [Fails]


def test_sample_output_lines():
    reading = _promises(
        "ping -c 3 10.0.0.2\n"
        "# PING 10.0.0.2 (10.0.0.2): 56 data bytes\n"
        "# 64 bytes from 10.0.0.2: seq=0 ttl=63 time=0.xxx ms\n"
        "# ...\n"
    )
    (reply,) = reading.promises
    assert isinstance(reply, Reply)
    assert (reply.address, reply.ttl) == ("10.0.0.2", 63)
    assert reading.examples == ["PING 10.0.0.2 (10.0.0.2): 56 data bytes"]
    kv = _promises("podman info | grep rootless\n# rootless: false\n")
    assert kv.promises == [ShowsLine("rootless: false", "rootless: false")]


@pytest.mark.parametrize(
    "block",
    [
        "podman network ls\n# n1 と n2 が表示されること\n",
        "podman network ls\n# n1 and n2 should be displayed\n",
        "# Verify n1 and n2 are displayed\nip link show\n",
    ],
)
def test_shown_names(block):
    (shows,) = _promises(block).promises
    assert isinstance(shows, ShowsNames)
    assert shows.names == ("n1", "n2")


def test_internet_marked_commands():
    assert _promises("# curl を入れる（インターネット接続が必要）\napk add curl\n").needs_internet
    assert _promises("# Install (Internet connection required)\napk add curl\n").needs_internet
    assert not _promises("# Install curl\napk add curl\n").needs_internet


def _seen(stdout: str, status: int | None = 0) -> Observed:
    return Observed(status, stdout, "", 0.1)


def same(word: str) -> str:
    return word


def test_checks_say_what_differed():
    loss = PacketLoss("100%", 100)
    assert not loss.check(_seen("3 packets transmitted, 3 received, 0% packet loss"), same).ok
    assert loss.check(_seen("2 packets transmitted, 0 received, 100% packet loss", 1), same).ok
    reply = Reply("ttl", "10.0.0.2", 63)
    seen = reply.check(_seen("64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=1 ms"), same)
    assert not seen.ok
    assert "ttl [64]" in seen.seen
    exact = ExactOutput("expected", "Hello from Pod B\n")
    assert exact.check(_seen("Hello from Pod B\n"), same).ok
    wrong = exact.check(_seen("Hello from Pod X\n"), same)
    assert not wrong.ok
    assert "'Hello from Pod X'" in wrong.seen
    assert "'Hello from Pod B'" in wrong.seen
    timed_out = exact.check(Observed(None, "", "", 15.0), same)
    assert not timed_out.ok
    assert "timed out" in timed_out.seen


IP_ADDR = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536
    inet 127.0.0.1/8 scope host lo
2: eth0@if12: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500
    inet 10.88.0.2/16 brd 10.88.255.255 scope global eth0
3: eth1@if8: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500
    inet 192.168.10.1/24 brd 192.168.10.255 scope global eth1
"""


def test_addresses_per_interface_from_the_prose():
    (promise,) = read_prose(
        Prose("出力に `10.88.x.x` (eth0), `192.168.10.1` (eth1) の IP が見えれば成功です。", 1)
    )
    assert isinstance(promise, AddressesOn)
    assert promise.check(_seen(IP_ADDR), same).ok
    moved = AddressesOn("", (("192.168.10.1", "eth0"),)).check(_seen(IP_ADDR), same)
    assert not moved.ok
    assert "it is on eth1" in moved.seen
    assert read_prose(Prose("No addresses here.", 1)) == []


def test_running_prerequisites_in_both_languages():
    ja = [
        Prose(
            "- `vlan_ja.md` の Step 6 まで完了し、コンテナ `a`, `b`, `router` が起動していること。",
            1,
        )
    ]
    en = [Prose("* Complete up to Step 6. Containers `a`, `b`, and `router` must be running.", 1)]
    assert running_containers(ja) == ("a", "b", "router")
    assert running_containers(en) == ("a", "b", "router")


def test_lexer_substitutions_inside_and_outside_double_quotes():
    (command,) = split_commands('echo "$(id -u) `date`" $(pwd) "$IF"\n')
    words = command.parts[0].words
    assert [w.substitution for w in words] == [False, True, True, False]
    assert words[1].value() == "$(id -u) `date`"
    assert words[3].variables == ["IF"]
    with pytest.raises(ShellSyntaxError):
        split_commands('echo "`never closed"\n')


# --- read as a person reads (issue: no false alarm on other revisions) ----------------------


def test_a_parenthesis_is_an_interface_only_when_it_names_one():
    output = _seen(IP_ADDR)
    (context,) = read_prose(Prose("Output should show `10.88.x.x` (podman's default).", 1))
    seen = context.check(output, same)
    assert seen.ok, seen.seen
    assert "10.88.x.x on eth0 ('podman's default' is context, not an interface)" in seen.seen
    (listed,) = read_prose(
        Prose("出力に `192.168.10.1`、`10.88.x.x`（NAT 用）の IP が見えれば成功です。", 1)
    )
    assert listed.check(output, same).ok
    # An interface of the output's shape, or one the document uses, is an interface.
    (shaped,) = read_prose(Prose("`192.168.10.1` (eth7) が見えること。", 1))
    assert (
        "192.168.10.1 not on eth7 (eth7: absent; it is on eth1)" in shaped.check(output, same).seen
    )
    (worded,) = read_prose(
        Prose("`192.168.10.1` ($IF.10) が表示されれば成功", 1), frozenset({"$IF.10"})
    )
    moved = worded.check(output, lambda word: word.replace("$IF", "ens5"))
    assert not moved.ok
    assert "not on ens5.10" in moved.seen
    (missing,) = read_prose(Prose("Output should show `192.168.30.1` (podman's default).", 1))
    assert missing.check(output, same).seen == "192.168.30.1: no interface has it"


def test_the_document_vocabulary_of_interfaces():
    from pytest_vlanlb.document.mapping import interface_vocabulary

    commands = split_commands(
        "ip link add link $IF name $IF.10 type vlan id 10\n"
        "podman exec router iptables -I FORWARD -i eth1 -o eth2 -j DROP\n"
        "podman exec router ip addr add 192.168.10.100/32 dev eth1\n"
        "podman exec a ip addr show eth0\n"
        "podman exec router ip route del default via 192.168.10.1 dev eth1\n"
        "podman exec router sh -c 'iptables -A FORWARD -i eth2 -o eth0 -j ACCEPT'\n"
    )
    assert interface_vocabulary(commands) == {"$IF.10", "eth0", "eth1", "eth2"}


def test_results_stated_on_the_commands_own_line():
    assert [type(p) for p in _promises("ping -c 2 h  # 結果: パケットロス 100%\n").promises] == [
        PacketLoss
    ]
    (shows,) = _promises('curl http://v # -> "Hello from Pod B" と出れば成功！\n').promises
    assert isinstance(shows, ShowsText)
    assert shows.text == "Hello from Pod B"
    assert shows.check(_seen("Hello from Pod B\n"), same).ok
    assert not shows.check(_seen("Hello from Pod C\n"), same).ok
    (english,) = _promises('curl http://v\n# -> Should output "Hello from Pod B"!\n').promises
    assert isinstance(english, ShowsText)
    (above,) = _promises("# 「Hello from Pod B」が返ってくることを確認\ncurl http://v\n").promises
    assert isinstance(above, ShowsText)
    # A remark on the line is not sample output.
    remark = _promises("export IF=ens5 # ご自身の環境に合わせて変更してください\n")
    assert (remark.promises, remark.examples, remark.not_understood) == ([], [], [])


@pytest.mark.parametrize(
    ("comment", "percent"),
    [
        ("# 100% のパケットロスになること", 100),
        ("# Expect packet loss of 100%", 100),
        ("# パケットロス率: 100%", 100),
        ("# 0% packet loss", 0),
    ],
)
def test_packet_loss_in_other_words(comment, percent):
    (loss,) = _promises(f"ping -c 2 h\n{comment}\n").promises
    assert isinstance(loss, PacketLoss)
    assert loss.percent == percent


def test_statements_no_reader_understands_are_reported_not_judged():
    reading = _promises(
        "ip route | grep default\n# 'default via' で始まる行が eth0 の1行だけ表示されれば正解です\n"
        "# default via 10.88.0.1 dev eth0\n"
    )
    assert reading.promises == []
    assert reading.not_understood == [
        "'default via' で始まる行が eth0 の1行だけ表示されれば正解です"
    ]
    assert reading.examples == ["default via 10.88.0.1 dev eth0"]


@pytest.mark.parametrize(
    "note",
    [
        "# net-vlan10 と net-vlan20 が表示されればOK",
        "# net-vlan10、net-vlan20 が一覧に表示されること",
        "# net-vlan10 and net-vlan20 should be listed",
        "# Check that net-vlan10 and net-vlan20 appear",
    ],
)
def test_shown_names_in_other_words(note):
    (shows,) = _promises(f"podman network ls\n{note}\n").promises
    assert isinstance(shows, ShowsNames)
    assert shows.names == ("net-vlan10", "net-vlan20")


NESTED = """# Nested

## 準備

### 1. 前提条件

- コンテナ `a`、`b`、`router` が起動していること。

### 2. 環境確認

```bash
podman info | grep rootless
```

## 実習ステップ

### STEP 1: 作る

```bash
true
```

### 1. 疎通確認 (about Step 1's links)

```bash
ping -c 1 h
```

### ステップ 2: 確かめる

```bash
true
```

## 片付け

```bash
true
```
"""


def test_steps_nested_under_one_heading_are_steps():
    doc = parse_document(NESTED, Path("nested.md"))
    runnable = [s for s in doc.sections if s.shell_blocks or s.id == "prerequisites"]
    assert [s.id for s in runnable] == ["prerequisites", "step-1", "step-2", "cleanup"]
    prerequisites, step1 = runnable[0], runnable[1]
    assert running_containers([e for e in prerequisites.elements if isinstance(e, Prose)]) == (
        "a",
        "b",
        "router",
    )
    assert len(step1.shell_blocks) == 2  # its own sub-heading stays inside it


def test_prerequisite_sentences_turned_round():
    assert running_containers(
        [Prose("The `a`, `b` and `router` containers must be running.", 1)]
    ) == (
        "a",
        "b",
        "router",
    )
    assert running_containers([Prose("- `a`、`b`、`router` が起動していること", 1)]) == (
        "a",
        "b",
        "router",
    )
    assert running_containers([Prose("`a`、`b`、`router` のコンテナが起動していること", 1)]) == (
        "a",
        "b",
        "router",
    )
