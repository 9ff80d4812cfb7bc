"""The commands of `failover-sim`, one module each, all in one form.

Each module defines

- `NAME`: the command's name (`failover-sim NAME`);
- `HELP`: its line in `failover-sim --help`;
- `DESCRIPTION` and `EPILOG`: the top and the examples of `failover-sim NAME --help`;
- `add_arguments(parser)`: its arguments, on the `argparse` parser sim/cli.py makes for it;
- `main(args) -> int`: the command, given the parsed arguments; returns the exit status
  (0 done, 1 a negative answer such as an invalid scenario or a failed check, 2 input
  it cannot use).

A command that hands everything after its name to a parser of its own
(`serve`, `bench`) also defines `forwarded(rest) -> Namespace | None`: the
arguments for `main` when it takes `rest` as it is, None to parse as usual.

sim/cli.py lists the modules and dispatches; nothing else imports them. A
command calls the public API (`sim.load`, `sim.run`, `sim.sweep`,
`sim.open_results`, `sim.write_report`) and the analysis functions
(`sim.analysis`), and prints; the computing is done below it.
"""
