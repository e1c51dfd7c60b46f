"""Secret backends: the embedded store and the Onetime Secret service, behind one protocol."""
