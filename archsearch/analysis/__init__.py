"""The analysis room: Pareto fronts, hypervolume, tables and plots of a study."""
