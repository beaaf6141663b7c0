"""The acquirer: its ledger, its batches and memory, its pure core and its simpy shell."""
