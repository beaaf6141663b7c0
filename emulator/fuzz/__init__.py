"""``posemu fuzz``: workloads, the campaign, shrinking, findings."""
