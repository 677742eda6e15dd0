"""Fault tests: the stack started whole, one thing broken at a time under load, everything
counted (`make faults`; `make faults FAULTS_SHORT=1` for the short form CI runs)."""
