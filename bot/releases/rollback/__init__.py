"""/rollback: parse the text, prepare a confirmation card, run the deploy tool once, verify health.

A ``RollbackRequest`` row (``bot/db/models/releases.py``) is the state machine::

    pending ──Confirm──▶ approved ──worker claims──▶ running ──▶ succeeded ──▶ health: checking ──▶ healthy
       │                                               │                                        └─▶ unhealthy
       ├──Cancel──▶ cancelled                          ├──▶ failed
       └──(nobody confirmed in time)──▶ expired        └──(its replica died: lease lapsed)──▶ interrupted

Exactly once. Confirm moves pending → approved with one conditional UPDATE and records the
``rollback.execute`` outbox item in the same transaction; the worker moves approved → running with
another conditional UPDATE before it calls the tool, outside the worker loop (a rollback may take
minutes), renewing a lease on the row while it runs. A double click, a Slack retry or a second replica
loses one of these races and runs nothing; a run whose replica died is reported ``interrupted`` by the
``rollback.watchdog`` job, never run again on its own.

One at a time. ``active_key`` (``service/env``, unique) is held from the request until the health check
ends, so a second /rollback of the same service and environment is refused with a pointer to the card.

Health is polled by ``rollback.health`` outbox items, one per attempt, every
``rollback.health_interval_seconds`` until every health check of that environment passes or
``rollback.health_timeout_seconds`` (wall clock, like the outbox's own delays) have passed.

Where each part lives:

    parse.py     the /rollback grammar → Help | History | Request (pure)
    target.py    choosing the target release: current → target, past versions earlier rollbacks left (pure)
    service.py   history, request, Confirm, Cancel: pending → approved | cancelled | expired (return data)
    card.py      the living card (ROLLBACK_CARD), its buttons, the news of an outcome
    run.py       approved → running → succeeded | failed, under a lease; the watchdog → interrupted
    health.py    succeeded → health: checking → healthy | unhealthy (or skipped)
    store.py     reading the rows (take a session, never commit)
    wiring.py    its handlers and job, registered with the outbox and the jobs

``bot.releases.dispatch`` renders the replies; ``bot.actions`` lists the command and the buttons.
"""
