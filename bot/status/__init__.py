"""Production status: ``/prodstatus``, ``GET /api/prodstatus``, the daily digest and the weekly report.

The gathering takes no Slack and no database: explicit ports in, data out, a failing source turned
into data. ``report`` gathers (``gather_report``), ``models`` holds the data, ``evaluation`` the
judgement, ``service_checks`` one service's checks and ``source_runs`` one source's run under its
timeout. ``prodstatus`` adds cmdcenter's own state (incidents, ledger, freezes), ``dispatch`` answers
the command, ``digests`` posts the scheduled reports.
"""
