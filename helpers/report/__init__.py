"""The report: analysis of stored tables, figures, the papermill runner and the explorer."""
