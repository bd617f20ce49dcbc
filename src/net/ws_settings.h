#pragma once

#include <string>
#include <vector>

namespace tickwire::net::ws {

// What a WebSocket upgrade request must look like (from config; read-only after start). Apart
// from ws_upgrade.h so that what includes the server context does not pull in Beast's parser.
struct UpgradeSettings {
  std::string path = "/";  // WS_PATH: the only target upgraded (query strings ignored)
  // WS_ALLOWED_ORIGINS: empty = any. A request that carries an Origin header (browsers always
  // do) must name one of these, compared without case; one without it is not a browser's.
  std::vector<std::string> allowed_origins;
};

}  // namespace tickwire::net::ws
