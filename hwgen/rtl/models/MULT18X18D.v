// Behavioural model of the Lattice ECP5 MULT18X18D sysDSP block, for simulation only
// (yosys ships just a blackbox). Written for hwgen from the block's documented behaviour
// (Lattice "ECP5 and ECP5-5G sysDSP Usage Guide", FPGA-TN-02205): covers the plain multiply
// mode hwgen instantiates (hwgen/rtl/ecp5_dsp.py):
//
//   A, B, SIGNEDA, SIGNEDB --[input registers A/B]--> 18x18 multiply (each operand sign-
//   extended when its SIGNED bit is 1, zero-extended otherwise) --[pipeline register]-->
//   --[output register]--> P[35:0]
//
// Each register is present when its REG_*_CLK parameter names a clock (CLK0..CLK3) and is
// bypassed when it is "NONE"; it loads when its REG_*_CE clock enable is high and clears
// synchronously on its REG_*_RST (RESETMODE "SYNC"; "ASYNC" is not modelled). With all three
// register groups on CLK0 the product appears three rising edges after its operands.
// Not modelled (tied off by hwgen, rejected below): the shift-register inputs/outputs
// (SOURCEA/SOURCEB = 1, SRI*/SRO*, RO*), the C input (MULT_BYPASS, SOURCEB_MODE other
// than B_SHIFT), HIGHSPEED_CLK and CAS_MATCH_REG. GSR is not modelled (registers start at 0).
`timescale 1ns / 1ps
module MULT18X18D (
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    input SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9,
    input SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
    input SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9,
    input SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
    output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9,
    output SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
    output SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9,
    output SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
    output ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9,
    output ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
    output ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9,
    output ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
    output ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9,
    output ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20,
    output P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2,
    output P1, P0, SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    // The unmodelled features must stay unused.
    initial begin
        if (RESETMODE != "SYNC" || MULT_BYPASS != "DISABLED" || SOURCEB_MODE != "B_SHIFT"
            || HIGHSPEED_CLK != "NONE" || CAS_MATCH_REG != "FALSE")
            $fatal(1, "MULT18X18D model: only the plain registered multiply mode is modelled");
        if (REG_INPUTA_CLK != REG_INPUTB_CLK)
            $fatal(1, "MULT18X18D model: input registers A and B must share a clock");
    end

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    wire [3:0] clks = {CLK3, CLK2, CLK1, CLK0};
    wire [3:0] ces = {CE3, CE2, CE1, CE0};
    wire [3:0] rsts = {RST3, RST2, RST1, RST0};

    function integer sel(input [8*8-1:0] name);  // "CLK2" -> 2, "CE1" -> 1, "NONE" -> -1
        begin
            case (name[7:0])
                "0": sel = 0;
                "1": sel = 1;
                "2": sel = 2;
                "3": sel = 3;
                default: sel = -1;
            endcase
        end
    endfunction

    localparam integer IN_CLK = sel(REG_INPUTA_CLK);
    localparam integer PIPE_CLK = sel(REG_PIPELINE_CLK);
    localparam integer OUT_CLK = sel(REG_OUTPUT_CLK);
    localparam integer IN_CE = sel(REG_INPUTA_CE), IN_RST = sel(REG_INPUTA_RST);
    localparam integer PIPE_CE = sel(REG_PIPELINE_CE), PIPE_RST = sel(REG_PIPELINE_RST);
    localparam integer OUT_CE = sel(REG_OUTPUT_CE), OUT_RST = sel(REG_OUTPUT_RST);

    // Input registers (operands and their signedness travel together).
    reg [17:0] a_r = 0, b_r = 0;
    reg sa_r = 0, sb_r = 0;
    wire [17:0] a_m, b_m;
    wire sa_m, sb_m;
    generate
        if (IN_CLK >= 0) begin : g_in
            always @(posedge clks[IN_CLK])
                if (rsts[IN_RST]) begin
                    a_r <= 0; b_r <= 0; sa_r <= 0; sb_r <= 0;
                end else if (ces[IN_CE]) begin
                    a_r <= a; b_r <= b; sa_r <= SIGNEDA; sb_r <= SIGNEDB;
                end
            assign {a_m, b_m, sa_m, sb_m} = {a_r, b_r, sa_r, sb_r};
        end else begin : g_in_bypass
            assign {a_m, b_m, sa_m, sb_m} = {a, b, SIGNEDA, SIGNEDB};
        end
    endgenerate

    // The multiplier: 36-bit product of the extended operands.
    wire [35:0] a_x = {{18{sa_m & a_m[17]}}, a_m};
    wire [35:0] b_x = {{18{sb_m & b_m[17]}}, b_m};
    wire [35:0] prod = a_x * b_x;
    wire s_prod = sa_m | sb_m;

    // Pipeline register.
    reg [35:0] pipe_r = 0;
    reg s_pipe_r = 0;
    wire [35:0] pipe_m;
    wire s_pipe_m;
    generate
        if (PIPE_CLK >= 0) begin : g_pipe
            always @(posedge clks[PIPE_CLK])
                if (rsts[PIPE_RST]) begin
                    pipe_r <= 0; s_pipe_r <= 0;
                end else if (ces[PIPE_CE]) begin
                    pipe_r <= prod; s_pipe_r <= s_prod;
                end
            assign {pipe_m, s_pipe_m} = {pipe_r, s_pipe_r};
        end else begin : g_pipe_bypass
            assign {pipe_m, s_pipe_m} = {prod, s_prod};
        end
    endgenerate

    // Output register.
    reg [35:0] out_r = 0;
    wire [35:0] p;
    generate
        if (OUT_CLK >= 0) begin : g_out
            always @(posedge clks[OUT_CLK])
                if (rsts[OUT_RST]) out_r <= 0;
                else if (ces[OUT_CE]) out_r <= pipe_m;
            assign p = out_r;
        end else begin : g_out_bypass
            assign p = pipe_m;
        end
    endgenerate

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20,
            P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2,
            P1, P0} = p;
    assign SIGNEDP = s_pipe_m;
    // Shift-register and register outputs: the registered operands (not used by hwgen).
    assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9,
            SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = a_m;
    assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9,
            ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = a_m;
    assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9,
            SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = b_m;
    assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9,
            ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = b_m;
    assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9,
            ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = 18'd0;
endmodule
