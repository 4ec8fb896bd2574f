"""``haowatch notify …`` and ``haowatch diff``: subscriptions to events, and edit diffs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scheduler.config import Settings


def _cli() -> Any:
    # scheduler.cli imports this module to register the commands; import it back lazily.
    from scheduler import cli

    return cli


def _events(text: str) -> list[str]:
    from db.events import EVENT_KINDS

    kinds = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in EVENT_KINDS]
    if unknown or not kinds:
        raise _cli().UsageError(f"--events: {', '.join(unknown) or 'nothing given'} not among {','.join(EVENT_KINDS)}")
    return list(dict.fromkeys(kinds))


def cmd_notify_add(args: argparse.Namespace, settings: Settings) -> int:
    from db import events as events_db
    from scheduler.notify import InvalidNotifyURL, check_url

    cli = _cli()
    url = args.url.strip()
    try:
        shown = check_url(url)
    except InvalidNotifyURL as exc:
        raise cli.UsageError(f"{cli_short(url)}: {exc}") from None
    kinds = _events(args.events) if args.events else list(events_db.EVENT_KINDS)
    tid = cli._tid(args.source) if args.source else None
    keyword = args.keyword.strip() if args.keyword and args.keyword.strip() else None
    with cli._db(settings) as conn:
        sub_id = events_db.add_subscription(conn, url, kinds, tid, keyword)
    print(f"subscription {sub_id}: {shown} for {','.join(kinds)}"
          + (f" of {tid}" if tid else "") + (f" containing {keyword!r}" if keyword else ""))
    return cli.EXIT_OK


def cli_short(text: str, limit: int = 80) -> str:
    """A user's value shortened for an error line (never echo a 100 KB argument)."""
    from scheduler.notify import private_url

    shown = private_url(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def cmd_notify_list(args: argparse.Namespace, settings: Settings) -> int:
    from db import events as events_db
    from scheduler.notify import private_url

    cli = _cli()
    with cli._db(settings) as conn:
        subs = events_db.list_subscriptions(conn)
    if args.json:
        rows = [{"id": s.id, "url": private_url(s.url), "events": list(s.events), "source": s.source_tid,
                 "keyword": s.keyword, "enabled": s.enabled, "created_at": s.created_at.isoformat(),
                 "pending": s.pending, "delivered": s.delivered, "dead": s.dead} for s in subs]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return cli.EXIT_OK
    table = [[str(s.id), private_url(s.url), ",".join(s.events), s.source_tid or "*", s.keyword or "-",
              "yes" if s.enabled else "no", str(s.pending), str(s.delivered), str(s.dead)] for s in subs]
    cli._print_table(table, ["ID", "URL", "EVENTS", "SOURCE", "KEYWORD", "ENABLED", "PENDING", "SENT", "DEAD"])
    return cli.EXIT_OK


def _subscription_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise _cli().UsageError(f"{text[:40]!r} is not a subscription id (see `haowatch notify list`)")
    return int(text)


def cmd_notify_remove(args: argparse.Namespace, settings: Settings) -> int:
    from db import events as events_db

    cli = _cli()
    sub_id = _subscription_id(args.id)
    with cli._db(settings) as conn:
        if not events_db.remove_subscription(conn, sub_id):
            raise cli.UsageError(f"no subscription {sub_id}")
    print(f"removed subscription {sub_id}")
    return cli.EXIT_OK


def cmd_notify_test(args: argparse.Namespace, settings: Settings) -> int:
    """Send a test message now, and leave a ``test`` event in the outbox for the record."""
    from db import events as events_db
    from scheduler.notify import build_message, private_url, send

    cli = _cli()
    sub_id = _subscription_id(args.id)
    with cli._db(settings) as conn:
        sub = events_db.get_subscription(conn, sub_id)
        if sub is None:
            raise cli.UsageError(f"no subscription {sub_id}")
        event_id = events_db.queue_test_event(conn, sub_id)
        # Deliver it right here (the running service would otherwise pick it up), claiming it first
        # so a running dispatcher does not send it a second time.
        delivery = events_db.claim_delivery(conn, event_id, sub_id, 60)
        if delivery is None:
            print(f"test event {event_id} queued for subscription {sub_id} ({private_url(sub.url)})")
            return cli.EXIT_OK
        ok, error = send(sub.url, build_message(conn, delivery.event, settings.site_url))
        if ok:
            events_db.mark_delivered(conn, event_id, sub_id)
        else:
            events_db.mark_failed(conn, event_id, sub_id, error, retry_in_seconds=0, dead=True)
    if not ok:
        print(f"haowatch: test to subscription {sub_id} ({private_url(sub.url)}) failed: {error}",
              file=sys.stderr)
        return cli.EXIT_FAILED
    print(f"test event {event_id} delivered to subscription {sub_id} ({private_url(sub.url)})")
    return cli.EXIT_OK


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    from db import events as events_db
    from scheduler.diff import diff_article, render_text

    cli = _cli()
    docid = cli._docid(args.docid)
    with cli._db(settings) as conn:
        revisions = events_db.article_revision_numbers(conn, docid)
        if not revisions:
            raise cli.UsageError(f"{docid} is not a stored article")
        if args.rev is None:
            new_rev = revisions[-1]
        elif args.rev in revisions:
            new_rev = args.rev
        else:
            raise cli.UsageError(f"{docid} has no revision {args.rev} (revisions: "
                                 f"{', '.join(map(str, revisions))})")
        earlier = [r for r in revisions if r < new_rev]
        if not earlier:
            print(f"{docid}: revision {new_rev} is the first one stored; nothing to compare")
            return cli.EXIT_OK
        old = events_db.article_revision(conn, docid, earlier[-1])
        new = events_db.article_revision(conn, docid, new_rev)
    assert old is not None and new is not None
    diff = diff_article(old["title"], old["body_text"], new["title"], new["body_text"])
    if args.json:
        print(json.dumps({"docid": docid, "from_revision": old["revision"], "to_revision": new["revision"],
                          "stats": diff.stats, "diff": render_text(diff, context=args.context)},
                         ensure_ascii=False, indent=2))
        return cli.EXIT_OK
    stats = diff.stats
    print(f"{docid}: revision {old['revision']} → {new['revision']}: {stats['edited']} paragraph(s) edited,"
          f" {stats['added']} added, {stats['removed']} removed")
    print(render_text(diff, context=args.context))
    return cli.EXIT_OK


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``notify`` and ``diff`` on the top-level subparsers."""
    p_notify = sub.add_parser("notify", help="send events (new, edited, deleted, failing, ...) somewhere")
    n_sub = p_notify.add_subparsers(dest="notify_command", required=True, parser_class=parser_class,
                                    metavar="ACTION")
    p_add = n_sub.add_parser("add", help="subscribe an Apprise URL (json://, mailto://, tgram://, slack://, ...)")
    p_add.add_argument("url", metavar="URL")
    p_add.add_argument("--events", help="comma-separated: new,edited,deleted,restored,failing,recovered"
                                        " (default: all)")
    p_add.add_argument("--source", metavar="TID", help="only events of this source")
    p_add.add_argument("--keyword", metavar="WORD", help="only articles whose title or text contains WORD")
    p_add.set_defaults(func=cmd_notify_add)
    p_list = n_sub.add_parser("list", help="list subscriptions (secrets hidden) with delivery counts")
    p_list.add_argument("--json", action="store_true")
    p_list.set_defaults(func=cmd_notify_list)
    p_rm = n_sub.add_parser("remove", help="delete a subscription")
    p_rm.add_argument("id", metavar="ID")
    p_rm.set_defaults(func=cmd_notify_remove)
    p_test = n_sub.add_parser("test", help="send a test message to a subscription now")
    p_test.add_argument("id", metavar="ID")
    p_test.set_defaults(func=cmd_notify_test)

    p_diff = sub.add_parser("diff", help="what changed in an edited article, paragraph by paragraph")
    p_diff.add_argument("docid", metavar="DOCID")
    p_diff.add_argument("--rev", type=int, help="show the change that made revision N (default: the latest)")
    p_diff.add_argument("--context", type=int, default=1, help="unchanged paragraphs around changes (default 1)")
    p_diff.add_argument("--json", action="store_true")
    p_diff.set_defaults(func=cmd_diff)
