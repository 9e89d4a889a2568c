"""Reading NanoAOD (simulated or real), object and event selection, systematic variations and
cutflows."""
