// tail: prints the ticks of the topics named on the command line as they arrive, until the
// connection ends (or, with TAIL_COUNT set, after that many ticks).
//   STREAM_USER=... STREAM_PASS=... ./tail 127.0.0.1 7878 AAPL MSFT
#include <tickwire/client/client.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

using namespace tickwire::client;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: tail HOST PORT TOPIC...\n");
    return 2;
  }
  const char* user = std::getenv("STREAM_USER");
  const char* pass = std::getenv("STREAM_PASS");
  const char* count = std::getenv("TAIL_COUNT");
  ClientOptions o;
  o.host = argv[1];
  o.port = static_cast<std::uint16_t>(std::stoi(argv[2]));
  o.username = user != nullptr ? user : "";
  o.password = pass != nullptr ? pass : "";
  // o.reconnect.enabled = true;  // resume across server restarts: "Reconnect and resume"
  auto connected = Client::Connect(o);
  if (!connected.ok()) {
    std::fprintf(stderr, "%s\n", connected.error().ToString().c_str());
    return 1;
  }
  Client& c = *connected.value();
  const std::vector<std::string> topics(argv + 3, argv + argc);
  if (auto sub = c.Subscribe(Mode::kTick, topics); !sub.ok()) {
    std::fprintf(stderr, "%s\n", sub.error().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "subscribed\n");

  unsigned long left = count != nullptr ? std::stoul(count) : 0;  // 0: no limit
  for (;;) {
    auto ev = c.Next(std::chrono::seconds(1));
    if (!ev) {  // a quiet second is normal: nothing arrived, keep waiting
      std::fprintf(stderr, "no ticks in the last second\n");
      continue;
    }
    if (auto* batch = std::get_if<Batch>(&*ev)) {
      for (const Record& r : batch->records) {
        const Tick& t = std::get<Tick>(r);  // a TICK subscription delivers ticks only
        std::printf("%s %.17g %.17g seq %llu\n", t.topic.c_str(), t.price, t.size,
                    static_cast<unsigned long long>(t.seq));
        if (left != 0 && --left == 0) return 0;
      }
      std::fflush(stdout);
    } else if (auto* err = std::get_if<Error>(&*ev)) {
      // Non-fatal (a refused request, a batch gap): report and go on. A fatal one closes the
      // client: Closed comes next.
      std::fprintf(stderr, "%s\n", err->ToString().c_str());
    } else {
      const Closed& closed = std::get<Closed>(*ev);
      std::fprintf(stderr, "closed: %s\n",
                   closed.reason ? closed.reason->ToString().c_str() : "by the client");
      return 1;
    }
  }
}
