; A longer demo print (about a minute): a fault that hides the job for a while still leaves
; it the minimum job time, seen running, to arm the power-off.
M117 Long demo print
M140 S50
M104 S200
M109 S200
G28
G90
G1 Z0.3 F3000
G1 X10 Y10 F3000
G4 S20
G1 X100 Y10 F3000
G1 X100 Y100 F3000
G4 S20
G1 X10 Y100 F3000
G1 X10 Y10 F3000
G4 S20
M104 S0
M140 S0
G1 Z20 F3000
M117 Long demo print done
