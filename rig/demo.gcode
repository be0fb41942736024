; OctoPlugout demo print: heats the hotend, "prints" for about half a minute, then ends.
M117 Demo print
M140 S50
M104 S200
M109 S200
G28
G90
G1 Z0.3 F3000
G1 X10 Y10 F3000
G4 S10
G1 X100 Y10 F3000
G1 X100 Y100 F3000
G4 S10
G1 X10 Y100 F3000
G1 X10 Y10 F3000
G4 S10
M104 S0
M140 S0
G1 Z20 F3000
M117 Demo print done
