"""Fit a scenario to a service's own logs (docs/fit.md).

Balancer access logs give the clients (cohorts by user-agent family and
request rate, connection reuse, the shape of the day); the authoritative
DNS server's query log gives the resolvers (how many, their share, how long
each keeps the service's answer against its TTL). Logs are streamed line by
line; malformed lines are counted by kind, never fatal; client addresses
are reduced to salted hashes as they are read and never written out.

One module per log format family (`aws`, `nginx`, `haproxy`, `route53`,
`bind`), one per estimate (`cohorts`, `connections`, `ages`, `shape`,
`resolvers`, with `networks`, `linking` and `forever` for what EDNS client
subnet adds), and `run` to tie them to a scenario and a report.
"""
