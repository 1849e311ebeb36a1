"""DreamSim against MuJoCo: held-out fidelity reports and the side-by-side demo."""
