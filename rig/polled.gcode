; A print of about two minutes: long enough to arm when a printer integration that polls every
; 30 s shows it (the job is seen up to 30 s late, and its clock counts 30 s less).
M117 Polled demo print
M140 S50
M104 S200
M109 S200
G28
G90
G1 Z0.3 F3000
G1 X10 Y10 F3000
G4 S20
G1 X100 Y10 F3000
G4 S20
G1 X100 Y100 F3000
G4 S20
G1 X10 Y100 F3000
G4 S20
G1 X10 Y10 F3000
G4 S20
G1 X50 Y50 F3000
G4 S20
M104 S0
M140 S0
G1 Z20 F3000
M117 Polled demo print done
