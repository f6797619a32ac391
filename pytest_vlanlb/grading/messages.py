"""Every word the grader says, in English and in Japanese: step titles, evidence, hints, and
the report's own labels (`--vlanlb-lang`; by default `ja` where LC_ALL or LANG starts with
`ja`). Both catalogues have the same keys and the same placeholders
(tests/unit/test_grading_messages.py). The Japanese follows the workshop's own wording
(vlan_ja.md, k8s_lb_ja.md): 「Step 2 の DROP ルール」, 「VIP」, 「DNAT」, 「マスカレード」.
Commands inside hints are the same in both: they are what the student types.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..observation.counters import Move, story
from ..observation.probes import HttpResult, PingResult
from ..observation.words import Catalogued, Words

EN: dict[str, str] = {
    # step titles (over the topology's facts)
    "title.env": "Base lab of vlan_ja.md: containers, addresses, routes via the router",
    "title.web-server": "Step 1: {b} answers {greeting!r} on port {backend_port}",
    "title.firewall": "Step 2: {a} cannot reach {b} directly (ping and HTTP)",
    "title.vip": "Step 3: {vip} on the router's VLAN-{public_vlan} interface, reachable from {a}",
    "title.dnat": "Step 4: traffic to VIP:{port} is translated to {backend}:{backend_port}",
    "title.snat": (
        "Step 5: that traffic leaves toward {b} from the router's VLAN-{pod_vlan} address"
    ),
    "title.vip-curl": "Step 6: {a} gets exactly {greeting!r} from {vip_url}",
    # containers
    "ev.no_container": "container {name!r} ({label}) does not exist",
    "ev.paused": "container {name!r} ({label}) is paused",
    "ev.not_running": "container {name!r} ({label}) is not running",
    "hint.missing_containers": (
        "create and start the missing containers as in vlan_ja.md, or name yours "
        "with --vlanlb-names router=R,a=A,b=B"
    ),
    "hint.unpause_one": (
        "cannot judge: {containers} paused; resume it with `podman unpause {names}` and grade again"
    ),
    "hint.unpause_many": (
        "cannot judge: {containers} paused; resume them with `podman unpause {names}` and grade "
        "again"
    ),
    # what every step may meet
    "ev.no_iptables": "iptables is not installed on the router",
    "hint.first_install_iptables": "first install iptables: {command}",
    "ev.hung": "`{command}` in {container} did not finish within {bound:g}s and was killed",
    "hint.hung": (
        "cannot judge: `{tool}` in {container} hangs instead of answering. Is it the real "
        "tool? Reinstall it (on alpine: apk add --no-cache {package})"
    ),
    "ev.cut": "`{command}` in {container} printed more than {mib} MiB: not read whole",
    "hint.cut": (
        "cannot judge: {container} holds more rules than the grader reads ({mib} MiB of "
        "`{command}`); remove the rules the workshop did not ask for and grade again"
    ),
    "hint.could_not_probe": "cannot judge: the grader could not probe this step (see evidence)",
    "ev.not_graded": "not graded",
    "hint.not_graded": "not graded in this run",
    "ev.not_graded_yet": "not graded: this run grades up to {upto}",
    "ev.being_solved": "`vlanlb solve` is changing this lab now",
    "hint.being_solved": (
        "cannot judge: `vlanlb solve` is changing this lab now; grade it again when it ends"
    ),
    # vlanlb solve
    "solve.would": "would run: {command}",
    "solve.failed": "  failed ({error}); stopped here",
    "solve.cannot": "cannot fix {step}: {why}",
    "solve.nothing": "nothing to change: the lab is already the workshop's state up to {upto}",
    # env
    "ev.has": "{node} has {address}",
    "ev.lacks": "{node} lacks {address} (has {have})",
    "ev.default_route": "{node}: default via {gateway} (the router)",
    "ev.no_default_route": "{node}: no default route via {gateway}: {routes!r}",
    "ev.forwards": "router forwards (ip_forward=1)",
    "ev.no_forward": "router ip_forward={value}",
    "hint.rebuild": (
        "rebuild the base lab as in vlan_ja.md: static addresses with "
        "`podman run --ip`/`podman network connect --ip`, the router created with "
        "--sysctl net.ipv4.ip_forward=1"
    ),
    # web-server
    "ev.from_router": "from the router: {result}",
    "hint.literal_e": (
        "the server's shell printed a literal '-e': its sh is not busybox/ash. "
        "Use busybox sh for the loop, or printf instead of echo -e"
    ),
    "hint.endless": (
        "{b}'s answer does not end (more than {limit} bytes, cut off): Step 1 "
        "answers exactly {greeting!r} once per request"
    ),
    "hint.wrong_text": "{b} answers, but not exactly {greeting!r}: check Step 1's echo text",
    "ev.tool_missing": "{tool} is not installed on {node}",
    "hint.install_then_server": "{install}, then start Step 1's server: {server}",
    "hint.nothing_listens": "nothing listens on {b}:{port}; start Step 1's server: {server}",
    "hint.b_silent_to_router": (
        "{b} did not answer the router: is {b}'s address right and the server running?"
    ),
    # firewall
    "ev.from": "from {node}: {result}",
    "ev.router": "router: {moves}",
    "hint.ping_sent_nothing": (
        "cannot judge: `ping` in {container} sent no echo request (see evidence). If it is not "
        "the real ping, reinstall it (on alpine: apk add --no-cache iputils); if {a} has no "
        "route, fix env first"
    ),
    "hint.b_down": (
        "cannot judge: {b} does not answer even the router, and no DROP rule on the "
        "router counted a packet. Start {b} ({container}) and grade again"
    ),
    "hint.drop_missing": (
        "{a} reaches {b} directly: Step 2's DROP rule is missing. "
        "Add it so that it spares DNAT'ed traffic: {command}"
    ),
    "hint.not_dropped": (
        "ping is blocked but HTTP to {b} was {outcome}, not dropped: the workshop's "
        "firewall drops silently (-j DROP, not REJECT)"
    ),
    # vip
    "ev.no_vip": "no router interface has {vip}",
    "hint.add_vip": "add the VIP (Step 3): {command}",
    "ev.vip_elsewhere": "{vip} is on the router's {holder}, not on {public_if} (VLAN {vlan})",
    "hint.vip_wrong_if": (
        "the VIP is on the wrong interface;{reach} MetalLB announces it on the "
        "public side: {remove}; {add}"
    ),
    "hint.vip_reach_arp": (
        " {a} reaches it only because Linux answers ARP for any local address (arp_ignore=0);"
    ),
    "ev.vip_on": "{vip} is on {holder}",
    "ev.vip_on_vlan": "{vip} is on {holder} (VLAN {vlan})",
    "hint.vip_no_answer": (
        "the VIP is in place but {a} gets no answer from it: check {a}'s address/route"
    ),
    # dnat
    "ev.rule": "rule: {rule}",
    "ev.no_dnat_rule": "no DNAT rule in nat PREROUTING",
    "hint.dnat_elsewhere": "the VIP traffic is translated, but not to {target}: use {command}",
    "hint.dnat_no_match": (
        "a DNAT rule exists but {a}'s request did not match it; it must match {match} "
        "(and the VIP must be reachable, see vip)"
    ),
    "hint.add_dnat": "add Step 4's DNAT rule: {command}",
    # snat
    "ev.no_snat_rule": "no MASQUERADE/SNAT rule in nat POSTROUTING covers {backend}:{port}",
    "hint.add_snat": "add Step 5's rule: {command}",
    "ev.snat_moved": "{a}'s request to the VIP was source-NATed ({packets} packet(s))",
    "ev.snat_dropped": (
        "judged by the rule alone: {a}'s request was dropped in FORWARD "
        "before reaching POSTROUTING (see vip-curl)"
    ),
    "ev.snat_never": (
        "judged by the rule alone: {a}'s request never reached {b}'s side (see dnat and vip)"
    ),
    # vip-curl
    "ev.from_with": "from {a} ({tool}): {result}",
    "ev.with_wget": "busybox wget: curl missing",
    "hint.curl_missing": "curl is not installed on {a}: {command}",
    "hint.drop_after_dnat": (
        "the FORWARD DROP rule of Step 2 also drops the DNAT'ed packets (FORWARD sees "
        "them after PREROUTING rewrote the destination). Replace it: {command}"
    ),
    "hint.no_translation": (
        "the router owns the VIP but nothing translates it: add Step 4's DNAT rule"
    ),
    "hint.refused_by_b": (
        "the request reached {b}, which refused it: start Step 1's web server on {b}"
    ),
    "hint.nobody_answers": (
        "nobody answers for the VIP: add it to the router's VLAN-{vlan} side (Step 3)"
    ),
    "hint.answer_not_exact": "the answer is not exactly {greeting!r}: check Step 1's server",
    "hint.see_evidence": "see the evidence: the request did not complete",
    # probes, as seen
    "probe.sent_none": "sent no echo request within {seconds:g}s (OutEchos unmoved)",
    "probe.no_reply": "no reply within {seconds:g}s",
    "probe.no_answer": "no answer within {seconds:g}s",
    "probe.wget_exited": "wget exited {rc}",
    # the report's own words
    "status.pass": "PASS",
    "status.fail": "FAIL",
    "status.cannot-judge": "cannot judge",
    "status.not-yet": "not yet",
    "label.hint": "hint",
    "label.seen": "seen",
    "label.passed": "passed",
    "label.student": "student",
    "label.score": "score",
    "label.steps": "{passed}/{graded}",
    "label.steps_points": "{passed}/{graded} steps, {score:g}/{max:g} points",
    "label.up_to": ", up to {upto}",
    "page.title": "vlanlb class report: {labs} labs, topology {topology}",
    "page.missed": "Steps most of the class did not pass",
    "page.missed_line": "{missed} of {graded} did not pass",
    "page.none": "none",
    "page.containers": "containers {names}",
    "page.podman": "; podman {url}",
    "class.header": "vlanlb class: {labs} labs",
}

JA: dict[str, str] = {
    "title.env": "vlan_ja.md の基本環境: コンテナ、アドレス、ルーター経由の経路",
    "title.web-server": "Step 1: {b} がポート {backend_port} で {greeting!r} と応答する",
    "title.firewall": "Step 2: {a} から {b} へ直接は届かない（ping と HTTP）",
    "title.vip": (
        "Step 3: {vip} がルーターの VLAN {public_vlan} 側のインタフェースにあり、{a} から届く"
    ),
    "title.dnat": "Step 4: VIP:{port} 宛の通信が {backend}:{backend_port} に変換される",
    "title.snat": "Step 5: その通信がルーターの VLAN {pod_vlan} 側のアドレスから {b} へ送られる",
    "title.vip-curl": "Step 6: {a} が {vip_url} から {greeting!r} をそのまま受け取る",
    "ev.no_container": "コンテナ {name!r}（{label}）がありません",
    "ev.paused": "コンテナ {name!r}（{label}）が一時停止しています",
    "ev.not_running": "コンテナ {name!r}（{label}）が起動していません",
    "hint.missing_containers": (
        "vlan_ja.md のとおり足りないコンテナを作成・起動してください。別の名前で作った場合は "
        "--vlanlb-names router=R,a=A,b=B で指定します"
    ),
    "hint.unpause_one": (
        "判定できません: {containers} が一時停止しています。`podman unpause {names}` で再開して"
        "から採点し直してください"
    ),
    "hint.unpause_many": (
        "判定できません: {containers} が一時停止しています。`podman unpause {names}` で再開"
        "してから採点し直してください"
    ),
    "ev.no_iptables": "ルーターに iptables がインストールされていません",
    "hint.first_install_iptables": "まず iptables をインストールしてください: {command}",
    "ev.hung": "{container} の `{command}` が {bound:g} 秒以内に終わらず、止めました",
    "hint.hung": (
        "判定できません: {container} の `{tool}` が応答せずに止まったままです。本物のツール"
        "ですか？入れ直してください（alpine では apk add --no-cache {package}）"
    ),
    "ev.cut": "{container} の `{command}` が {mib} MiB を超えて出力したため、全体を読めません",
    "hint.cut": (
        "判定できません: {container} のルールが採点で読める量（`{command}` の {mib} MiB）を超えて"
        "います。実習で指示されていないルールを消してから採点し直してください"
    ),
    "hint.could_not_probe": "判定できません: このステップを確認できませんでした（証拠を参照）",
    "ev.not_graded": "採点されていません",
    "hint.not_graded": "この実行では採点されていません",
    "ev.not_graded_yet": "未採点: この実行は {upto} までを採点します",
    "ev.being_solved": "`vlanlb solve` がこの環境を変更中です",
    "hint.being_solved": (
        "判定できません: `vlanlb solve` がこの環境を変更中です。終わってから採点し直してください"
    ),
    # vlanlb solve
    "solve.would": "実行予定: {command}",
    "solve.failed": "  失敗しました（{error}）。ここで止めます",
    "solve.cannot": "{step} は直せません: {why}",
    "solve.nothing": "変更不要: この環境はすでに {upto} までのワークショップの状態です",
    "ev.has": "{node} に {address} がある",
    "ev.lacks": "{node} に {address} がない（あるのは {have}）",
    "ev.default_route": "{node}: デフォルトルートは {gateway}（ルーター）経由",
    "ev.no_default_route": "{node}: {gateway} 経由のデフォルトルートがない: {routes!r}",
    "ev.forwards": "ルーターはパケットを転送する（ip_forward=1）",
    "ev.no_forward": "ルーターの ip_forward={value}",
    "hint.rebuild": (
        "vlan_ja.md のとおり基本環境を作り直してください: `podman run --ip`／`podman network "
        "connect --ip` で固定アドレスを付け、ルーターは --sysctl net.ipv4.ip_forward=1 を付けて"
        "作成します"
    ),
    "ev.from_router": "ルーターから: {result}",
    "hint.literal_e": (
        "サーバーのシェルが '-e' をそのまま出力しました: sh が busybox/ash ではありません。"
        "ループを busybox sh で動かすか、echo -e の代わりに printf を使ってください"
    ),
    "hint.endless": (
        "{b} の応答が終わりません（{limit} バイトを超えたので打ち切り）: Step 1 のサーバーは "
        "1 回のリクエストに {greeting!r} だけを返します"
    ),
    "hint.wrong_text": (
        "{b} は応答しますが、{greeting!r} と完全には一致しません: Step 1 の echo の文字列を確認"
        "してください"
    ),
    "ev.tool_missing": "{node} に {tool} がインストールされていない",
    "hint.install_then_server": (
        "{install} を実行してから、Step 1 のサーバーを起動してください: {server}"
    ),
    "hint.nothing_listens": (
        "{b}:{port} で何も待ち受けていません。Step 1 のサーバーを起動してください: {server}"
    ),
    "hint.b_silent_to_router": (
        "{b} がルーターに応答しません: {b} のアドレスは正しく、サーバーは起動していますか？"
    ),
    "ev.from": "{node} から: {result}",
    "ev.router": "ルーター: {moves}",
    "hint.ping_sent_nothing": (
        "判定できません: {container} の `ping` が echo request を送っていません（証拠を参照）。"
        "本物の ping でなければ入れ直してください（alpine では apk add --no-cache iputils）。"
        "{a} に経路がない場合は、先に env を直してください"
    ),
    "hint.b_down": (
        "判定できません: {b} はルーターにも応答せず、ルーターのどの DROP ルールもパケットを"
        "数えていません。{b}（{container}）を起動してから採点し直してください"
    ),
    "hint.drop_missing": (
        "{a} から {b} へ直接届きます: Step 2 の DROP ルールがありません。DNAT された通信は"
        "通すように追加してください: {command}"
    ),
    "hint.not_dropped": (
        "ping は遮断されていますが、{b} への HTTP は破棄されずに {outcome} でした: 実習の"
        "ファイアウォールは黙って破棄します（REJECT ではなく -j DROP）"
    ),
    "ev.no_vip": "ルーターのどのインタフェースにも {vip} がない",
    "hint.add_vip": "VIP を追加してください（Step 3）: {command}",
    "ev.vip_elsewhere": ("{vip} はルーターの {holder} にあり、{public_if}（VLAN {vlan}）にはない"),
    "hint.vip_wrong_if": (
        "VIP のインタフェースが違います。{reach}MetalLB は公開側で広告します: {remove}; {add}"
    ),
    "hint.vip_reach_arp": (
        "{a} から届くのは、Linux がどのローカルアドレスの ARP にも答えるため（arp_ignore=0）"
        "にすぎません。"
    ),
    "ev.vip_on": "{vip} は {holder} にある",
    "ev.vip_on_vlan": "{vip} は {holder}（VLAN {vlan}）にある",
    "hint.vip_no_answer": (
        "VIP はありますが、{a} に応答が返りません: {a} のアドレスと経路を確認してください"
    ),
    "ev.rule": "ルール: {rule}",
    "ev.no_dnat_rule": "nat PREROUTING に DNAT ルールがない",
    "hint.dnat_elsewhere": (
        "VIP 宛の通信は変換されていますが、{target} 宛ではありません: {command} を使ってください"
    ),
    "hint.dnat_no_match": (
        "DNAT ルールはありますが、{a} のリクエストが一致しませんでした。{match} に一致する"
        "必要があります（VIP に届くことも必要: vip を参照）"
    ),
    "hint.add_dnat": "Step 4 の DNAT ルールを追加してください: {command}",
    "ev.no_snat_rule": (
        "nat POSTROUTING に {backend}:{port} を対象とする MASQUERADE/SNAT ルールがない"
    ),
    "hint.add_snat": "Step 5 のルールを追加してください: {command}",
    "ev.snat_moved": "{a} から VIP へのリクエストは送信元が変換された（{packets} パケット）",
    "ev.snat_dropped": (
        "ルールだけで判定: {a} のリクエストは POSTROUTING に届く前に FORWARD で破棄された"
        "（vip-curl を参照）"
    ),
    "ev.snat_never": (
        "ルールだけで判定: {a} のリクエストは {b} の側に届かなかった（dnat と vip を参照）"
    ),
    "ev.from_with": "{a} から（{tool}）: {result}",
    "ev.with_wget": "busybox wget: curl がない",
    "hint.curl_missing": "{a} に curl がインストールされていません: {command}",
    "hint.drop_after_dnat": (
        "Step 2 の FORWARD の DROP ルールが、DNAT されたパケットも破棄しています（FORWARD は "
        "PREROUTING が宛先を書き換えた後のパケットを見るため）。置き換えてください: {command}"
    ),
    "hint.no_translation": (
        "ルーターは VIP を持っていますが、変換するルールがありません: Step 4 の DNAT ルールを"
        "追加してください"
    ),
    "hint.refused_by_b": (
        "リクエストは {b} に届きましたが拒否されました: {b} で Step 1 の Web サーバーを起動して"
        "ください"
    ),
    "hint.nobody_answers": (
        "VIP に誰も応答しません: ルーターの VLAN {vlan} 側に VIP を追加してください（Step 3）"
    ),
    "hint.answer_not_exact": (
        "応答が {greeting!r} と完全には一致しません: Step 1 のサーバーを確認してください"
    ),
    "hint.see_evidence": "証拠を参照してください: リクエストが完了しませんでした",
    "probe.sent_none": "{seconds:g} 秒以内に echo request を送っていない（OutEchos が動かない）",
    "probe.no_reply": "{seconds:g} 秒以内に応答なし",
    "probe.no_answer": "{seconds:g} 秒以内に応答なし",
    "probe.wget_exited": "wget が終了コード {rc} で終わった",
    "status.pass": "合格",
    "status.fail": "不合格",
    "status.cannot-judge": "判定不能",
    "status.not-yet": "未到達",
    "label.hint": "ヒント",
    "label.seen": "観測",
    "label.passed": "合格数",
    "label.student": "受講者",
    "label.score": "点数",
    "label.steps": "{passed}/{graded}",
    "label.steps_points": "{passed}/{graded} ステップ、{score:g}/{max:g} 点",
    "label.up_to": "、{upto} まで",
    "page.title": "vlanlb クラスレポート: {labs} 環境、トポロジー {topology}",
    "page.missed": "クラスの多くが合格しなかったステップ",
    "page.missed_line": "{graded} 人中 {missed} 人が不合格",
    "page.none": "なし",
    "page.containers": "コンテナ {names}",
    "page.podman": "、podman {url}",
    "class.header": "vlanlb クラス: {labs} 環境",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "ja": JA}


class Speaker(Catalogued):
    """Grading's messages said in one language; `words` says the observations in it."""

    catalogues = CATALOGUES

    def __init__(self, language: str = "en") -> None:
        super().__init__(language)
        self.words = Words(language)

    def status(self, status: str) -> str:
        return self(f"status.{status}")

    # --- what probes saw, in this language: observation/words.py says it --------------

    def ping(self, result: PingResult) -> str:
        return self.words.ping(result)

    def http(self, result: HttpResult) -> str:
        return self.words.http(result)

    def moves(self, moves: Sequence[Move]) -> str:
        """The router's counter movements, as the lab's tests and document mode say them."""
        return self.words.facts(story(list(moves)))
