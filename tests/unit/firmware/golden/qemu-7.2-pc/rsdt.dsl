/*
 * Intel ACPI Component Architecture
 * 
 *
 * ACPI Data Table [RSDT]
 *
 * Format: [HexOffset DecimalOffset ByteLength]  FieldName : FieldValue
 */

[000h 0000   4]                    Signature : "RSDT"    [Root System Description Table]
[004h 0004   4]                 Table Length : 00000034
[008h 0008   1]                     Revision : 01
[009h 0009   1]                     Checksum : F8
[00Ah 0010   6]                       Oem ID : "BOCHS "
[010h 0016   8]                 Oem Table ID : "BXPC    "
[018h 0024   4]                 Oem Revision : 00000001
[01Ch 0028   4]              Asl Compiler ID : "BXPC"
[020h 0032   4]        Asl Compiler Revision : 00000001

[024h 0036   4]       ACPI Table Address   0 : 3FFE198F
[028h 0040   4]       ACPI Table Address   1 : 3FFE1A03
[02Ch 0044   4]       ACPI Table Address   2 : 3FFE1A83
[030h 0048   4]       ACPI Table Address   3 : 3FFE1ABB

Raw Table Data: Length 52 (0x34)

    0000: 52 53 44 54 34 00 00 00 01 F8 42 4F 43 48 53 20  // RSDT4.....BOCHS 
    0010: 42 58 50 43 20 20 20 20 01 00 00 00 42 58 50 43  // BXPC    ....BXPC
    0020: 01 00 00 00 8F 19 FE 3F 03 1A FE 3F 83 1A FE 3F  // .......?...?...?
    0030: BB 1A FE 3F                                      // ...?
