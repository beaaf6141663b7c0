"""The acquirer: its ledger, its pure core and its simpy shell."""
