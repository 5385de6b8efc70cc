// Bulk simulation harness for the hwgen Accelerator (Verilator --cc --exe).
//
// Loads the model once (weight beats), then runs images [start, start+count) of an int8 image
// file through the real streams with no gaps and no backpressure, compares every logit with
// the golden file and appends one JSON line per image to the output file (flushed per line,
// so a driver can watch progress). Each line has the cycle of the image's start pulse, so
// start-to-start periods follow. With --back-to-back 1 the image stream is fed by itself,
// all images in order, whenever the design takes a value (it preloads the next image while
// the current one computes); the host only pulses start, takes the logits and reads the
// counters. Built by hwgen/sim/fast.py around its wrapper `accel_sim`
// (same ports as `accel`, rst registered; C++ class Vaccel); see docs/architecture.md.
//
//   accel_harness --beats F --images F --golden F --in-len N --out-len N --n-perf N
//                 --start S --count C --out F [--max-cycles M] [--trace F.vcd]
//                 [--back-to-back 0|1]
//
// Exit status: 0 all images bit-exact, 1 a mismatch/timeout/protocol error, 2 bad arguments.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Vaccel.h"
#include "verilated.h"
#ifdef HWGEN_TRACE
#include "verilated_vcd_c.h"
#endif

// Stream payload framing, set by fast.py from the Verilog's port widths: when the design has
// the `last` bit (image__payload bit 8, weights__payload bit 32) these are 1.
#ifndef HWGEN_IMAGE_LAST
#define HWGEN_IMAGE_LAST 0
#endif
#ifndef HWGEN_HAS_ERROR  // the design has the sticky `error` output
#define HWGEN_HAS_ERROR 0
#endif
#ifndef HWGEN_PERF_LATENCY  // edges from perf_sel to perf_data (hwgen.rtl.top.PERF_READ_LATENCY)
#define HWGEN_PERF_LATENCY 2
#endif
#ifndef HWGEN_WEIGHTS_LAST
#define HWGEN_WEIGHTS_LAST 0
#endif
#ifndef HWGEN_LOADED_LATENCY  // edges from taking the final weight beat to weights_loaded
#define HWGEN_LOADED_LATENCY 2  // (hwgen.rtl.loader.LOADED_LATENCY)
#endif

// Verilator mangles "__" in a port name to "___05F": image__payload is top->image___05Fpayload.

namespace {

// The back-to-back image feed: every value of every image in order, `last` on each image's
// final one, offered whenever it has one left; it moves on a rising edge where ready was high.
struct Feed {
    const int8_t* values = nullptr;
    size_t n = 0, in_len = 1, next = 0;
    bool offered = false;
};

struct Sim {
    std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    Feed* feed = nullptr;
    std::unique_ptr<Vaccel> top;
    uint64_t cycle = 0;
#ifdef HWGEN_TRACE
    VerilatedVcdC* vcd = nullptr;
#endif
    Sim() {
#ifdef HWGEN_TRACE
        ctx->traceEverOn(true);  // before the model is built
#endif
        top.reset(new Vaccel{ctx.get()});
    }

    // Falling edge (inputs set by the caller settle), then the rising edge.
    void fall() {
        top->clk = 0;
        if (feed) drive_feed();
        top->eval();
        if (feed) feed->offered = feed->next < feed->n && top->image___05Fready;
#ifdef HWGEN_TRACE
        if (vcd) vcd->dump(10 * cycle);
#endif
    }
    void rise() {
        top->clk = 1;
        top->eval();
#ifdef HWGEN_TRACE
        if (vcd) vcd->dump(10 * cycle + 5);
#endif
        ++cycle;
        if (feed && feed->offered) ++feed->next;
    }
    void drive_feed();
    void tick() { fall(); rise(); }
};

// ---------------------------------------------------------------- stream drive (one place)
// Every beat the harness puts on an input stream goes through these two functions; the
// payload framing (data, `last`) lives only here.
inline void set_image_beat(Vaccel* t, int8_t v, bool last) {
    uint32_t p = static_cast<uint8_t>(v);
    if (HWGEN_IMAGE_LAST) p |= static_cast<uint32_t>(last) << 8;
    t->image___05Fpayload = p;
}
void Sim::drive_feed() {
    Feed& f = *feed;
    top->image___05Fvalid = f.next < f.n;
    if (f.next < f.n)
        set_image_beat(top.get(), f.values[f.next], f.next % f.in_len == f.in_len - 1);
}
inline void set_weight_beat(Vaccel* t, uint32_t w, bool last) {
    uint64_t p = w;
    if (HWGEN_WEIGHTS_LAST) p |= static_cast<uint64_t>(last) << 32;
    t->weights___05Fpayload = p;
}

// Send n beats on a valid/ready stream: valid held high, a beat moves on a rising edge where
// ready was high. Returns false if ready stays low for max_wait cycles.
template <typename SetBeat, typename Valid, typename Ready>
bool send_stream(Sim& s, size_t n, SetBeat set_beat, Valid valid, Ready ready,
                 uint64_t max_wait) {
    for (size_t i = 0; i < n; ++i) {
        set_beat(i, i + 1 == n);
        valid(1);
        uint64_t waited = 0;
        for (;;) {
            s.fall();
            bool moved = ready();
            s.rise();
            if (moved) break;
            if (++waited > max_wait) return false;
        }
    }
    valid(0);
    return true;
}
// ----------------------------------------------------------------------------------------

struct Args {
    std::string beats, images, golden, out, trace;
    long in_len = -1, out_len = -1, n_perf = -1, start = 0, count = -1, back_to_back = 0;
    uint64_t max_cycles = 20000000;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "accel_harness: error: %s\n", why);
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + k).c_str());
        const char* v = argv[++i];
        if (k == "--beats") a.beats = v;
        else if (k == "--images") a.images = v;
        else if (k == "--golden") a.golden = v;
        else if (k == "--out") a.out = v;
        else if (k == "--trace") a.trace = v;
        else if (k == "--in-len") a.in_len = std::atol(v);
        else if (k == "--out-len") a.out_len = std::atol(v);
        else if (k == "--n-perf") a.n_perf = std::atol(v);
        else if (k == "--start") a.start = std::atol(v);
        else if (k == "--count") a.count = std::atol(v);
        else if (k == "--back-to-back") a.back_to_back = std::atol(v);
        else if (k == "--max-cycles") a.max_cycles = std::strtoull(v, nullptr, 10);
        else usage(("unknown option " + k).c_str());
    }
    if (a.beats.empty() || a.images.empty() || a.golden.empty() || a.out.empty())
        usage("--beats, --images, --golden and --out are required");
    if (a.in_len <= 0 || a.out_len <= 0 || a.n_perf <= 0 || a.count < 0 || a.start < 0)
        usage("--in-len, --out-len, --n-perf must be > 0, --start/--count >= 0");
    return a;
}

template <typename T>
std::vector<T> read_block(const std::string& path, long offset, long n) {
    std::vector<T> buf(n);
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) usage(("cannot open " + path).c_str());
    if (std::fseek(f, offset * static_cast<long>(sizeof(T)), SEEK_SET) != 0 ||
        std::fread(buf.data(), sizeof(T), n, f) != static_cast<size_t>(n))
        usage((path + ": file too short for the requested images").c_str());
    std::fclose(f);
    return buf;
}

long file_items(const std::string& path, size_t item) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) usage(("cannot open " + path).c_str());
    std::fseek(f, 0, SEEK_END);
    long n = std::ftell(f) / static_cast<long>(item);
    std::fclose(f);
    return n;
}

struct Outcome {
    std::vector<int> logits;
    std::vector<uint32_t> perf;
    long status = -1;  // the design's sticky status flags (-1: the design has none)
    uint64_t start = 0;  // cycle of the start pulse
    std::string error;  // protocol error or timeout; empty when the image ran
};

Outcome run_image(Sim& s, const int8_t* img, const Args& a) {
    Vaccel* t = s.top.get();
    Outcome o;
    t->dbg_stop = 0;
    o.start = s.cycle;
    t->start = 1;
    s.tick();
    t->start = 0;
    bool sent = s.feed != nullptr || send_stream(
        s, a.in_len, [&](size_t i, bool last) { set_image_beat(t, img[i], last); },
        [&](int v) { t->image___05Fvalid = v; }, [&] { return t->image___05Fready != 0; },
        a.max_cycles);
    if (!sent) {
        o.error = "image stream stalled";
        return o;
    }
    // Result transfer: ready held high; one logit per rising edge where valid is high.
    t->logits___05Fready = 1;
    uint64_t t0 = s.cycle;
    while (static_cast<long>(o.logits.size()) < a.out_len) {
        s.fall();
        if (t->logits___05Fvalid) {
            uint32_t w = t->logits___05Fpayload;
            o.logits.push_back(static_cast<int8_t>(w & 0xFF));
            bool last = (w >> 8) & 1;
            if (last != (static_cast<long>(o.logits.size()) == a.out_len)) {
                o.error = "logits last flag wrong at item " + std::to_string(o.logits.size() - 1);
                s.rise();
                break;
            }
        }
        s.rise();
        if (s.cycle - t0 > a.max_cycles) {
            o.error = "timeout waiting for logits";
            break;
        }
    }
    t->logits___05Fready = 0;
#if HWGEN_HAS_ERROR
    o.status = t->status;
    if (o.error.empty() && t->error) o.error = "the design raised its error output";
#endif
    for (long i = 0; i < a.n_perf; ++i) {  // perf_data: HWGEN_PERF_LATENCY edges after perf_sel
        t->perf_sel = static_cast<uint8_t>(i);
        for (int k = 0; k < HWGEN_PERF_LATENCY; ++k) s.tick();
        o.perf.push_back(t->perf_data);
    }
    return o;
}

void write_record(FILE* out, long index, const Outcome& o, const int8_t* want, long out_len,
                  bool match) {
    std::string line = "{\"index\": " + std::to_string(index) + ", \"logits\": [";
    for (size_t i = 0; i < o.logits.size(); ++i)
        line += (i ? ", " : "") + std::to_string(o.logits[i]);
    line += "], \"golden\": [";
    for (long i = 0; i < out_len; ++i) line += (i ? ", " : "") + std::to_string(want[i]);
    line += "], \"match\": " + std::string(match ? "true" : "false") + ", \"cycles\": [";
    for (size_t i = 0; i < o.perf.size(); ++i)
        line += (i ? ", " : "") + std::to_string(o.perf[i]);
    line += "], \"start\": " + std::to_string(o.start);
    if (o.status >= 0) line += ", \"status\": " + std::to_string(o.status);
    if (!o.error.empty()) line += ", \"error\": \"" + o.error + "\"";
    line += "}\n";
    std::fputs(line.c_str(), out);
    std::fflush(out);  // one line per image: the driver counts lines for progress
}

}  // namespace

int main(int argc, char** argv) {
    Args a = parse(argc, argv);
    long n_images = file_items(a.images, 1) / a.in_len;
    if (a.start + a.count > n_images)
        usage(("images " + std::to_string(a.start) + "+" + std::to_string(a.count) +
               " exceed the " + std::to_string(n_images) + " in " + a.images).c_str());
    long n_beats = file_items(a.beats, 4);
    auto beats = read_block<uint32_t>(a.beats, 0, n_beats);
    auto images = read_block<int8_t>(a.images, a.start * a.in_len, a.count * a.in_len);
    auto golden = read_block<int8_t>(a.golden, a.start * a.out_len, a.count * a.out_len);
    FILE* out = std::fopen(a.out.c_str(), "a");
    if (!out) usage(("cannot open " + a.out + " for appending").c_str());

    Sim s;
    Vaccel* t = s.top.get();
    t->logits___05Fready = 0;
    t->start = 0;
    t->dbg_stop = 0;
    t->image___05Fvalid = 0;
    t->weights___05Fvalid = 0;
    // The wrapper (fast.py sim_wrapper) registers rst (initially 1): the design sees it one
    // edge later, so it gets 3 reset edges, then (the extra tick) 1 idle edge as before.
    t->rst = 1;
    s.tick();
    s.tick();
    t->rst = 0;
    s.tick();
    s.tick();
    t->weights_restart = 1;
    s.tick();
    t->weights_restart = 0;
    bool loaded = send_stream(
        s, beats.size(), [&](size_t i, bool last) { set_weight_beat(t, beats[i], last); },
        [&](int v) { t->weights___05Fvalid = v; }, [&] { return t->weights___05Fready != 0; },
        a.max_cycles);
    // weights_loaded rises HWGEN_LOADED_LATENCY edges after the one that took the final beat
    // (LOADED_LATENCY in hwgen/rtl/loader.py), then one idle edge, as the cocotb bench
    // (accel_tb): the image slot opens the cycle after weights_loaded rises
    for (int k = 0; k < HWGEN_LOADED_LATENCY + 1; ++k) s.tick();
    if (!loaded || !t->weights_loaded) {
        std::fprintf(stderr, "accel_harness: weights_loaded is low after %ld beats\n", n_beats);
        return 1;
    }
#ifdef HWGEN_TRACE
    // Trace only the images (the model transfer would dominate the file).
    std::unique_ptr<VerilatedVcdC> vcd;
    if (!a.trace.empty()) {
        vcd.reset(new VerilatedVcdC);
        t->trace(vcd.get(), 99);
        vcd->open(a.trace.c_str());
        s.vcd = vcd.get();
    }
#else
    if (!a.trace.empty()) usage("--trace needs the traced build (HWGEN_TRACE)");
#endif
    Feed feed{images.data(), images.size(), static_cast<size_t>(a.in_len)};
    if (a.back_to_back) s.feed = &feed;  // from here on the image stream feeds itself
    int bad = 0;
    for (long k = 0; k < a.count; ++k) {
        Outcome o = run_image(s, images.data() + k * a.in_len, a);
        const int8_t* want = golden.data() + k * a.out_len;
        bool match = o.error.empty() && static_cast<long>(o.logits.size()) == a.out_len;
        for (long i = 0; match && i < a.out_len; ++i) match = o.logits[i] == want[i];
        write_record(out, a.start + k, o, want, a.out_len, match);
        bad += !match;
        if (!o.error.empty()) break;  // the design is in an unknown state
    }
#ifdef HWGEN_TRACE
    if (vcd) vcd->close();
#endif
    std::fclose(out);
    t->final();
    return bad ? 1 : 0;
}
