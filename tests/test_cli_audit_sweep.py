"""Every `hub` command is either one whose change a person made is written to the audit log (and
the test that proves it is named), or is listed with why it writes none. A new command fails here
until it is one or the other."""

from __future__ import annotations

from pathlib import Path

import click

from hub import cli

ROOT = Path(__file__).resolve().parent

# command -> (the test that asserts its audit entry, the action it writes)
AUDITED = {
    "drift ack": ("tests/e2e/test_audit_trail.py", "finding.ack"),
    "resync": ("tests/e2e/test_audit_trail.py", "resync.finding"),
    "outbox retry": ("tests/e2e/test_dropped_write.py", "outbox.retry"),
    "outbox drop": ("tests/e2e/test_dropped_write.py", "outbox.drop"),
    "review approve": ("tests/e2e/test_first_contact.py", "review.approve"),
    "connect": ("tests/e2e/test_connect.py", "connection.connect"),
    "disconnect": ("tests/e2e/test_connect.py", "connection.disconnect"),
    "users add": ("tests/test_users_cli.py", "user.add"),
    "users disable": ("tests/test_users_cli.py", "user.disable"),
    "users reset": ("tests/test_users_cli.py", "user.reset"),
    "users role": ("tests/test_users_cli.py", "user.role"),
    "rotate-key": ("tests/security/test_admin_commands.py", "key.rotate"),
    "forget-customer": ("tests/security/test_admin_commands.py", "customer.forget"),
    "setup salesforce": ("tests/e2e/test_setup.py", "setup.salesforce"),
    "setup webhooks": ("tests/e2e/test_setup.py", "setup.webhooks"),
}
NOT_AUDITED = {
    "init": "creates or migrates the schema (or writes a new config file); no data changes",
    "check": "reads: asks each vendor whether the connection works",
    "status": "reads", "export": "reads", "drift list": "reads", "drift show": "reads",
    "drift export": "reads", "outbox list": "reads", "audit list": "reads", "audit export": "reads",
    "users list": "reads", "review": "reads", "usage totals": "reads", "mappings": "reads (writes a file if asked)",
    "sync": "a pass as the schedule runs it (cron or by hand): kept in the runs table with its counts",
    "diff": "a diff as the schedule runs it: kept in the runs table, its findings with their life",
    "run": "the daemon: its console and API actions are audited per request",
    "usage import": "usage events, each kept once by its event id: the event is its own record",
    "demo": "a demonstration in a folder (and database) of its own",
    "emulate": "runs the vendor emulators; touches no hub",
}


def _leaves(group: click.Group, prefix: str = "") -> set[str]:
    found = set()
    for name, command in group.commands.items():
        full = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found |= _leaves(command, full)
            if command.invoke_without_command:
                found.add(full)  # `hub review` lists, on its own
        else:
            found.add(full)
    return found


def test_every_command_is_audited_or_says_why_not() -> None:
    commands = _leaves(cli)
    assert not AUDITED.keys() & NOT_AUDITED.keys()
    assert sorted(commands - AUDITED.keys() - NOT_AUDITED.keys()) == [], "classify the new command here"
    assert sorted((AUDITED.keys() | NOT_AUDITED.keys()) - commands) == [], "a listed command is gone"


def test_each_audited_command_is_proved_by_a_test_that_reads_its_entry() -> None:
    for command, (test, action) in AUDITED.items():
        text = (ROOT.parent / test).read_text(encoding="utf-8")
        word = command.split()[-1]
        invoked = f'"{word}"' in text or f"{word.replace('-', '_')}_command" in text  # by name, or its click command
        assert invoked and f'"{action}"' in text, (command, test, action)
