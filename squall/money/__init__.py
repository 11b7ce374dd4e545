"""Money and choice: prices, estimates (time, cost, energy), budgets with holds, usage records."""
