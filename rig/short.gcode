; A job shorter than the minimum job time: it must not arm the power-off.
M104 S200
G28
G4 S5
M104 S0
