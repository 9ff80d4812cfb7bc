"""Statistics across replications (means, 95% CIs, the summary) and figures."""

from sim.analysis.stats import mean_ci95, stragglers_share, summarize, t_quantile_975
from sim.analysis.table import cohort_table, format_table, summary_table

__all__ = ["cohort_table", "format_table", "mean_ci95", "stragglers_share", "summarize", "summary_table", "t_quantile_975"]
