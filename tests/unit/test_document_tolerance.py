"""Announced tolerance: the words that let a command fail, in Japanese and English, and the
words that look alike but do not (a hint about a failure, a promise that it fails)."""

from __future__ import annotations

import pytest

from pytest_vlanlb.document.bash import split_commands
from pytest_vlanlb.document.promises import Fails, read_command
from pytest_vlanlb.document.tolerance import CONDITIONAL, MAY_FAIL, OPTIONAL, allowance


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        ("既存のサブインタフェースを削除（存在する場合）", CONDITIONAL),
        ("既にある場合は削除", CONDITIONAL),
        ("古いネットワークが残っている場合は削除します", CONDITIONAL),
        ("nc が入っていない場合は追加", CONDITIONAL),
        ("存在すれば削除", CONDITIONAL),
        ("Delete existing subinterfaces (if they exist)", CONDITIONAL),
        ("Remove the old network if it already exists", CONDITIONAL),
        ("Install curl (if not installed)", CONDITIONAL),
        ("Install netcat if missing", CONDITIONAL),
        ("remove leftovers, if any", CONDITIONAL),
        ("**後片付け（任意）:** 実験用に入れたルールは戻しておきます。", OPTIONAL),
        ("必要に応じて実行してください", OPTIONAL),
        ("**Cleanup (optional):** remove the temporary firewall rule.", OPTIONAL),
        ("You can run this if you like", OPTIONAL),
        ("This step can be skipped", OPTIONAL),
        ("エラーは無視して構いません", MAY_FAIL),
        ("エラーが出ても問題ありません", MAY_FAIL),
        ("失敗しても大丈夫です", MAY_FAIL),
        ("※ `Cannot find device` などのエラーは、存在しない場合は問題ありません。", MAY_FAIL),
        ("初回は存在しないので失敗することがあります", MAY_FAIL),
        ("インタフェースがないとエラーになります", MAY_FAIL),
        ("環境によってはエラーになる場合があります", MAY_FAIL),
        ("It's fine if this fails on a fresh machine", MAY_FAIL),
        ("If it fails, that's OK: nothing was there", MAY_FAIL),
        ("This may fail on a fresh machine", MAY_FAIL),
        ('*Note:* "Cannot find device" errors are OK if the subinterfaces do not exist.', MAY_FAIL),
        ("Errors here can be safely ignored", MAY_FAIL),
        ("Ignore any errors", MAY_FAIL),
        ("It will fail if the network does not exist yet", MAY_FAIL),
    ],
)
def test_tolerance_in_both_languages(words, kind):
    found = allowance(words)
    assert found is not None, words
    assert found.kind == kind


@pytest.mark.parametrize(
    "words",
    [
        "VLAN 10 用のサブインタフェース作成",
        "届かない場合はルーターの設定を確認",  # a hint about a failure, not leave to fail
        "失敗する場合は Step 3 を見直してください",
        "疎通確認（失敗することを確認）",  # a promise that it fails
        "エラーがないことを確認",
        "If it fails, check the rule in Step 2",
        "Confirm that no errors are shown",
        "Create subinterface for VLAN 10",
        "問題があればやり直してください",
    ],
)
def test_words_that_allow_nothing(words):
    assert allowance(words) is None, words


def test_a_quoted_message_narrows_what_is_allowed():
    found = allowance("※ `Cannot find device` などのエラーは問題ありません", quoting=True)
    assert found is not None
    assert found.quoted == ("Cannot find device",)
    assert found.covers("ip link delete x", 'Cannot find device "x"')
    assert not found.covers("ip link add x", "RTNETLINK answers: File exists")
    assert found.covers("echo `Cannot find device`", "")  # it names the command itself
    assert allowance("エラーは無視して構いません", quoting=True).covers("anything", "any")


@pytest.mark.parametrize(
    "block",
    [
        "ping -c 3 -W 1 h # 失敗する\n",
        "ping -c 3 h\n# 失敗するはずです\n",
        "# ping が通らないことを確認\nping -c 3 h\n",
        "ping -c 3 h  # this fails\n",
        "# This should fail\nping -c 3 h\n",
    ],
)
def test_a_promise_that_it_fails_is_not_a_tolerance(block):
    (command,) = split_commands(block)
    assert [type(p) for p in read_command(command).promises] == [Fails]


@pytest.mark.parametrize(
    "block",
    [
        "# 存在しないと失敗します\nip link delete x\n",
        "# This will fail if the link does not exist\nip link delete x\n",
        "# 失敗することがあります\nip link delete x\n",
    ],
)
def test_a_failure_under_a_condition_is_no_promise(block):
    (command,) = split_commands(block)
    assert read_command(command).promises == []
    assert allowance(command.before[0]) is not None


def test_comments_above_a_run_of_commands_are_about_each_of_them():
    first, second, third = split_commands(
        "# 既存のサブインタフェースを削除（存在する場合）\n"
        "ip link delete a.10\nip link delete a.20\n\nip link add x\n"
    )
    assert first.lead == second.lead == ["既存のサブインタフェースを削除（存在する場合）"]
    assert third.lead == []
