"""proctor — runs, approvals, agents, memories and costs from a terminal, over the Proctor REST API.

Tables by default, --json for scripts. Exit codes: 0 done; 1 the server refused (conflict, invalid); 2 usage;
3 not logged in, or the token may not (401/403); 4 not found; 5 server unreachable or failing; 6 this server
has no such endpoint (e.g. memories or costs on a server without them). `runs watch` (and `runs start --watch`)
end with the run: 0 completed, 10 waiting for a person, 11 failed, 12 cancelled, 13 paused.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
import urllib.error

from proctor_cli.client import ApiError, Client, NotLoggedIn, config_save

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_NO_ENDPOINT = 0, 1, 2, 3, 4, 5, 6
WATCH_EXITS = {"completed": 0, "waiting_for_human": 10, "failed": 11, "cancelled": 12, "paused": 13}
WATCH_STOPS = frozenset(WATCH_EXITS)


class Output:
    def __init__(self, as_json: bool, stream=None):
        self.as_json, self.stream = as_json, stream or sys.stdout

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def data(self, value, *, columns: list[tuple[str, str]] | None = None, title: str = "") -> None:
        """``value`` as JSON, or as a table (a list) / key: value lines (one object)."""
        if self.as_json:
            self.line(json.dumps(value, indent=2, sort_keys=True, default=str))
        elif isinstance(value, list):
            self.table(value, columns or [(k, k) for k in (value[0] if value else {})])
        else:
            if title:
                self.line(title)
            for key, label in columns or [(k, k) for k in value]:
                self.line(f"{label + ':':<16} {shown(value.get(key))}")

    def table(self, rows: list[dict], columns: list[tuple[str, str]]) -> None:
        if not rows:
            self.line("(none)")
            return
        cells = [[shown(row.get(key), width=60) for key, _ in columns] for row in rows]
        widths = [max(len(label), *(len(r[i]) for r in cells)) for i, (_, label) in enumerate(columns)]
        self.line("  ".join(label.upper().ljust(w) for (_, label), w in zip(columns, widths)).rstrip())
        for row in cells:
            self.line("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def shown(value, width: int | None = None) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


RUN_COLUMNS = [("number", "run"), ("agent", "agent"), ("status", "status"), ("step", "step"), ("cost_usd", "cost"),
               ("goal", "goal")]
RUN_DETAIL = [("number", "Run"), ("agent", "Agent"), ("agent_version", "Version"), ("status", "Status"),
              ("step", "Step"), ("cost_usd", "Cost (USD)"), ("goal", "Goal"), ("last_action", "Last action"),
              ("next_action", "Next action"), ("terminal_reason", "Ended because"), ("answer", "Answer"),
              ("created_at", "Started"), ("finished_at", "Finished")]
APPROVAL_COLUMNS = [("id", "id"), ("run", "run"), ("kind", "kind"), ("tool", "tool"), ("risk", "risk"),
                    ("status", "status"), ("due_at", "due")]


# --- Commands -------------------------------------------------------------------------------------------

def login(args, out: Output) -> int:
    token = args.token or (sys.stdin.readline().strip() if not sys.stdin.isatty() else getpass.getpass("API token: "))
    who = Client(args.url, token).get("/whoami")
    path = config_save(args.url, token)
    out.data(who) if out.as_json else out.line(
        f"Logged in to {who['tenant_name']} as {who.get('user') or 'the token'} (scopes: {', '.join(who['scopes'])}); "
        f"saved to {path} (readable by you only).")
    return EXIT_OK


def runs_start(args, out: Output, api: Client) -> int:
    body = {"agent": args.agent, "goal": args.goal, **({"version": args.version} if args.version else {})}
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    run = api.request("POST", "/runs", body=body, headers=headers)
    if args.watch:
        return watch(api, run["number"], out, interval=args.interval)
    out.data(run, columns=RUN_DETAIL)
    return EXIT_OK


def runs_list(args, out: Output, api: Client) -> int:
    out.data(api.get("/runs", status=args.status, limit=args.limit), columns=RUN_COLUMNS)
    return EXIT_OK


def runs_show(args, out: Output, api: Client) -> int:
    out.data(api.get(f"/runs/{args.number}"), columns=RUN_DETAIL)
    return EXIT_OK


def runs_control(args, out: Output, api: Client) -> int:
    out.data(api.post(f"/runs/{args.number}/{args.command}"), columns=RUN_DETAIL)
    return EXIT_OK


def runs_say(args, out: Output, api: Client) -> int:
    out.data(api.post(f"/runs/{args.number}/messages", {"text": args.text}), columns=RUN_DETAIL)
    return EXIT_OK


def event_line(event: dict) -> str:
    payload = event.get("payload") or {}
    if event["type"] == "status":
        what = f"{payload.get('from')} → {payload.get('to')}" + (f" ({payload['reason']})" if payload.get("reason") else "")
    else:
        what = shown({k: v for k, v in payload.items()}, width=110)
    return f"{event['seq']:>5}  {event['type']:<22} {what}"


def watch(api: Client, number: int, out: Output, *, interval: float = 1.0) -> int:
    """Follow a run: its events as they happen and a status line when it changes, until it ends or waits."""
    after, last_status = 0, None
    while True:
        for event in api.get(f"/runs/{number}/events", after=after, limit=500):
            after = event["seq"]
            out.line(json.dumps(event, sort_keys=True, default=str) if out.as_json else event_line(event))
        run = api.get(f"/runs/{number}")
        status = (run["status"], run["step"], run["cost_usd"])
        if status != last_status and not out.as_json:
            out.line(f"-- run #{number} {run['status']} · step {run['step']} · ${run['cost_usd']}")
        last_status = status
        if run["status"] in WATCH_STOPS:
            if out.as_json:
                out.line(json.dumps({"run": run}, sort_keys=True, default=str))
            elif run["status"] == "completed" and run.get("answer"):
                out.line(f"Answer: {run['answer']}")
            elif run["status"] == "waiting_for_human":
                out.line(f"Waits for a person: {run.get('next_action') or run.get('last_action')} "
                         f"(see `proctor approvals list`)")
            return WATCH_EXITS[run["status"]]
        time.sleep(interval)


def runs_watch(args, out: Output, api: Client) -> int:
    return watch(api, args.number, out, interval=args.interval)


def approvals_list(args, out: Output, api: Client) -> int:
    out.data(api.get("/approvals", status=args.status, limit=args.limit), columns=APPROVAL_COLUMNS)
    return EXIT_OK


def approvals_show(args, out: Output, api: Client) -> int:
    out.data(api.get(f"/approvals/{args.id}"), columns=[*APPROVAL_COLUMNS, ("arguments", "arguments"),
                                                        ("reason", "reason"), ("policy", "policy"),
                                                        ("required_approvals", "approvals needed"),
                                                        ("decided_by", "decided by"), ("decision_note", "note")])
    return EXIT_OK


def approvals_decide(args, out: Output, api: Client) -> int:
    body = {"decision": args.command, "note": args.note or ""}
    if args.command == "edit":
        try:
            body["arguments"] = json.loads(args.arguments)
        except ValueError as error:
            raise UsageError(f"--arguments is not JSON: {error}") from None
    out.data(api.post(f"/approvals/{args.id}/decisions", body), columns=[*APPROVAL_COLUMNS, ("decided_by", "decided by")])
    return EXIT_OK


def agents_list(args, out: Output, api: Client) -> int:
    out.data(api.get("/agents"), columns=[("slug", "agent"), ("name", "name"), ("version", "version"),
                                          ("model", "model"), ("enabled", "enabled"), ("tools", "tools")])
    return EXIT_OK


MEMORY_COLUMNS = [("id", "id"), ("scope", "scope"), ("subject", "subject"), ("type", "type"), ("status", "status"),
                  ("pinned", "pinned"), ("content", "content")]


def memories(args, out: Output, api: Client) -> int:
    if args.command == "list":
        out.data(api.get("/memories", q=args.q, limit=args.limit), columns=MEMORY_COLUMNS)
    elif args.command == "search":
        out.data(api.get("/memories/search", q=args.query, limit=args.limit), columns=MEMORY_COLUMNS)
    elif args.command == "delete":
        api.request("DELETE", f"/memories/{args.id}")
        out.data({"deleted": args.id}) if out.as_json else out.line(f"Memory {args.id} deleted.")
    else:  # export: JSON always (it is for files)
        out.line(json.dumps(api.get("/memories/export"), indent=2, sort_keys=True, default=str))
    return EXIT_OK


def costs(args, out: Output, api: Client) -> int:
    window = {"range": args.range, "from": args.since, "to": args.until}
    if args.command == "summary":
        summary = api.get("/costs/summary", group_by=args.group_by, **window)
        if out.as_json:
            out.data(summary)
        else:
            out.line(f"{summary.get('from')} to {summary.get('to')}: ${summary.get('total_usd')} over "
                     f"{summary.get('calls')} calls" + (" (some simulated)" if summary.get("simulated") else ""))
            out.table(summary.get("groups", []), [("label", args.group_by), ("amount_usd", "amount"),
                                                  ("share_percent", "share %"), ("calls", "calls")])
    else:  # export: the server's CSV as it is
        sys.stdout.buffer.write(api.request("GET", "/costs/export.csv", query=window, raw=True))
        sys.stdout.flush()
    return EXIT_OK


# --- Parsing and dispatch -------------------------------------------------------------------------------

class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output, for scripts")
    root = Parser(prog="proctor", description=__doc__.split("\n\n")[0], parents=[common],
                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    groups = root.add_subparsers(dest="group", required=True, parser_class=Parser)

    p = groups.add_parser("login", parents=[common], help="Keep the server's URL and a token (file mode 0600)")
    p.add_argument("--url", required=True, help="e.g. https://proctor.example.com")
    p.add_argument("--token", help="The API token (prt_…); read from stdin or asked for when omitted")
    p.set_defaults(handler=login, needs_api=False)

    runs = groups.add_parser("runs", parents=[common], help="Start, follow and steer runs").add_subparsers(
        dest="command", required=True, parser_class=Parser)
    p = runs.add_parser("start", parents=[common], help="Start a run")
    p.add_argument("agent", help="The agent's slug")
    p.add_argument("goal")
    p.add_argument("--version", type=int, help="An earlier version of the agent")
    p.add_argument("--idempotency-key", help="The same key again returns the same run")
    p.add_argument("--watch", action="store_true", help="Follow it until it ends or waits for a person")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(handler=runs_start)
    p = runs.add_parser("list", parents=[common], help="Recent runs")
    p.add_argument("--status", default="")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=runs_list)
    for name, handler, text in [("show", runs_show, "A run"), ("pause", runs_control, "Pause a run"),
                                ("resume", runs_control, "Resume a paused run"), ("cancel", runs_control, "Cancel a run")]:
        p = runs.add_parser(name, parents=[common], help=text)
        p.add_argument("number", type=int, help="The run's number")
        p.set_defaults(handler=handler)
    p = runs.add_parser("watch", parents=[common], help="Follow a run until it ends or waits for a person")
    p.add_argument("number", type=int)
    p.add_argument("--interval", type=float, default=1.0, help="Seconds between polls")
    p.set_defaults(handler=runs_watch)
    p = runs.add_parser("say", parents=[common], help="Add an instruction the run's next step will see")
    p.add_argument("number", type=int)
    p.add_argument("text")
    p.set_defaults(handler=runs_say)

    approvals = groups.add_parser("approvals", parents=[common], help="Decide what waits for a person").add_subparsers(
        dest="command", required=True, parser_class=Parser)
    p = approvals.add_parser("list", parents=[common], help="Approval requests (open ones by default)")
    p.add_argument("--status", default="open")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=approvals_list)
    p = approvals.add_parser("show", parents=[common])
    p.add_argument("id", type=int)
    p.set_defaults(handler=approvals_show)
    for name in ("approve", "reject", "edit"):
        p = approvals.add_parser(name, parents=[common], help=f"{name.title()} a request")
        p.add_argument("id", type=int)
        p.add_argument("--note", help="Why (a reject needs one on the console)")
        if name == "edit":
            p.add_argument("--arguments", required=True, help='The arguments to run instead, as JSON ({"steps": […]} '
                                                              "for a plan)")
        p.set_defaults(handler=approvals_decide)

    agents = groups.add_parser("agents", parents=[common], help="The tenant's agents").add_subparsers(
        dest="command", required=True, parser_class=Parser)
    agents.add_parser("list", parents=[common]).set_defaults(handler=agents_list)

    mem = groups.add_parser("memories", parents=[common], help="What agents remember").add_subparsers(
        dest="command", required=True, parser_class=Parser)
    p = mem.add_parser("list", parents=[common])
    p.add_argument("--q", default="", help="Words to filter by")
    p.add_argument("--limit", type=int, default=50)
    p = mem.add_parser("search", parents=[common])
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=20)
    p = mem.add_parser("delete", parents=[common])
    p.add_argument("id", type=int)
    mem.add_parser("export", parents=[common], help="Everything you may see, as JSON")
    for sub in mem.choices.values():
        sub.set_defaults(handler=memories)

    cost = groups.add_parser("costs", parents=[common], help="Spend").add_subparsers(
        dest="command", required=True, parser_class=Parser)
    p = cost.add_parser("summary", parents=[common])
    p.add_argument("--group-by", default="agent", help="agent, model, user, tool, …")
    cost.add_parser("export", parents=[common], help="The ledger as CSV on stdout")
    for sub in cost.choices.values():
        sub.add_argument("--range", default="", help="today, 7d, 30d, mtd")
        sub.add_argument("--from", dest="since", default="", help="YYYY-MM-DD")
        sub.add_argument("--to", dest="until", default="", help="YYYY-MM-DD (included)")
        sub.set_defaults(handler=costs)
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except UsageError as error:
        print(f"proctor: {error}", file=sys.stderr)
        return EXIT_USAGE
    out = Output(getattr(args, "json", False))
    try:
        if not getattr(args, "needs_api", True):
            return args.handler(args, out)
        return args.handler(args, out, Client.from_config())
    except UsageError as error:
        print(f"proctor: {error}", file=sys.stderr)
        return EXIT_USAGE
    except NotLoggedIn as error:
        print(f"proctor: {error}", file=sys.stderr)
        return EXIT_AUTH
    except ApiError as error:
        if error.no_such_endpoint:
            print(f"proctor: this server has no {error.path.split('/')[1]} API (404 for /api/v1{error.path}); it may "
                  f"run an older Proctor.", file=sys.stderr)
            return EXIT_NO_ENDPOINT
        if out.as_json:
            print(json.dumps({"status": error.status, "code": error.code, "message": error.message}), file=sys.stderr)
        else:
            print(f"proctor: {error.message} ({error.status} {error.code})", file=sys.stderr)
        return {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND}.get(
            error.status, EXIT_UNAVAILABLE if error.status >= 500 else EXIT_REFUSED)
    except (urllib.error.URLError, OSError) as error:
        print(f"proctor: cannot reach the server: {getattr(error, 'reason', error)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
