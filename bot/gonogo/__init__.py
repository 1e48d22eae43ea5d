"""/gonogo: release gates, approvals, policy exceptions, the GO announcement and Deploy on GO.

    parse.py       /gonogo text → a typed command
    windows.py     change windows: allow / deny specs, holidays (pure)
    gate_specs.py  the gate kinds' config, the gates of a service, the config checks (pure)
    gates.py       concurrent evaluation with a timeout each, one evaluator per kind
    assess.py      the verdict from gate results, votes and exceptions (pure)
    store.py       the decision tables: queries and rows (a session in, never a commit)
    card.py        the decision's living card, ``DecisionView`` and the card's buttons
    decisions.py   decide, re-check, settle (judge and announce), the objection window
    votes.py       approve, reject
    exceptions.py  policy exceptions: request, expiry, re-judging the live decisions
    status.py      /gonogo status
    deploy.py      Deploy on GO: the deploy tool, the release ledger, the post-deploy update
    dispatch.py    /gonogo, the card's buttons and the Reject modal → the services → the reply
                   (listed in ``bot.actions``; ``freeze`` / ``unfreeze`` belong to ``bot.releases``)

The tables are ``bot.db.models.gonogo`` (migration 0004).

What the gates read outside (JSON endpoints, GitHub check runs, manifests, commands) comes through
the ``GateSources`` port (``bot.adapters.gate_sources``).
"""
