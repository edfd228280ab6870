"""The console's forms, one module per part (account, members, keys)."""
