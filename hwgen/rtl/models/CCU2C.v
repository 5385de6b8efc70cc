// Behavioural model of the Lattice ECP5 CCU2C carry cell (two LUT4s in ripple mode), for
// simulation only. Transcribed for hwgen from yosys's own simulation model
// (share/lattice/ccu2c_sim.vh with common_sim.vh's LUT4/LUT2, yosys 0.70), which yosys and
// nextpnr-ecp5 build every adder with; only the parameters hwgen uses are covered:
//
//   half i:  F_i = INIT_i[{D_i, C_i, B_i, A_i}]       (the LUT4: propagate / sum before carry)
//            G_i = INIT_i[{B_i, A_i}]                   (INIT's low 4 bits as a LUT2: generate)
//            S_i = F_i ^ carry_in_i
//            carry_out_i = F_i ? carry_in_i : G_i
//   carry_in_0 = CIN, carry_in_1 = carry_out_0, COUT = carry_out_1.
//
// INJECT1_0 / INJECT1_1 = "YES" (the carry into that half forced to 0) is not used by hwgen
// and is rejected below.
`timescale 1ns / 1ps
module CCU2C (
    input CIN,
    input A0, B0, C0, D0, A1, B1, C1, D1,
    output S0, S1,
    output COUT
);
    parameter [15:0] INIT0 = 16'h0000;
    parameter [15:0] INIT1 = 16'h0000;
    parameter INJECT1_0 = "YES";
    parameter INJECT1_1 = "YES";

    initial begin
        if (INJECT1_0 != "NO" || INJECT1_1 != "NO") begin
            $display("CCU2C model: only INJECT1_0 = INJECT1_1 = \"NO\" is modelled");
            $finish;
        end
    end

    wire f0 = INIT0[{D0, C0, B0, A0}];
    wire g0 = INIT0[{2'b00, B0, A0}];
    wire c0 = f0 ? CIN : g0;
    assign S0 = f0 ^ CIN;

    wire f1 = INIT1[{D1, C1, B1, A1}];
    wire g1 = INIT1[{2'b00, B1, A1}];
    assign S1 = f1 ^ c0;
    assign COUT = f1 ? c0 : g1;
endmodule
