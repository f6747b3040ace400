"""Reports over evaluation rows: cost-quality plots, Markdown tables, budget-to-target answers."""
