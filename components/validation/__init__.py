"""Data gate before training (DataGate), drift measures, reference schema/statistics."""
