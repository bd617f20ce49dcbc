#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

namespace tickwire::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using Env = std::map<std::string, std::string>;

EnvLookup MapEnv(Env env) {
  return [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

Env WithCredentials(Env env = {}) {
  env.emplace("STREAM_USER", "alice");
  env.emplace("STREAM_PASS", "s3cret");
  return env;
}

ParseResult Parse(const Env& env, std::vector<std::string> args = {}) {
  return ParseServerConfig(args, MapEnv(env));
}

// The config, or a test failure naming what came back instead.
Config MustParse(const Env& env, std::vector<std::string> args = {}) {
  ParseResult r = Parse(env, std::move(args));
  if (auto* e = std::get_if<ParseError>(&r)) ADD_FAILURE() << "ParseError: " << e->message;
  if (auto* x = std::get_if<ParseExit>(&r)) ADD_FAILURE() << "ParseExit: " << x->text;
  if (auto* c = std::get_if<Config>(&r)) return *c;
  return {};
}

std::string MustFail(const Env& env, std::vector<std::string> args = {}) {
  ParseResult r = Parse(env, std::move(args));
  if (auto* e = std::get_if<ParseError>(&r)) return e->message;
  ADD_FAILURE() << "expected a ParseError";
  return {};
}

TEST(ConfigDefaults, MatchTheDocumentedTable) {
  const Config c = MustParse(WithCredentials());
  EXPECT_EQ(c.stream_user, "alice");
  EXPECT_EQ(c.stream_pass, "s3cret");
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(15));
  EXPECT_EQ(c.heartbeat_timeout, std::chrono::seconds(20));
  EXPECT_EQ(c.batch_window_ms, 5U);
  EXPECT_EQ(c.max_msg_size, 65536U);
  EXPECT_EQ(c.write_deadline, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.auth_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.listen_port, 7878);
  EXPECT_TRUE(c.tcp_nodelay);
  EXPECT_TRUE(c.tls_cert_path.empty());
  EXPECT_TRUE(c.tls_key_path.empty());
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_FALSE(Validate(c).has_value());
}

TEST(ConfigEnv, EverySettingIsReadFromTheEnvironment) {
  const Config c = MustParse(WithCredentials({
      {"LISTEN_ADDR", "127.0.0.1:0"},
      {"HEARTBEAT_INTERVAL", "2s"},
      {"HEARTBEAT_TIMEOUT", "2500ms"},
      {"AUTH_TIMEOUT_MS", "750"},
      {"BATCH_WINDOW_MS", "0"},
      {"MAX_MSG_SIZE", "1024"},
      {"WRITE_DEADLINE_MS", "100"},
      {"MAX_PENDING_BYTES", "2048"},
      {"WORKERS", "3"},
      {"TCP_NODELAY", "false"},
      {"SO_SNDBUF", "65536"},
      {"SO_RCVBUF", "131072"},
      {"LOG_LEVEL", "debug"},
      {"PORT_FILE", "/tmp/port"},
  }));
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 0);
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(2));
  EXPECT_EQ(c.heartbeat_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.auth_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(c.batch_window_ms, 0U);
  EXPECT_EQ(c.max_msg_size, 1024U);
  EXPECT_EQ(c.write_deadline, std::chrono::milliseconds(100));
  EXPECT_EQ(c.max_pending_bytes, 2048U);
  EXPECT_EQ(c.workers, 3U);
  EXPECT_EQ(c.EffectiveWorkers(), 3U);
  EXPECT_FALSE(c.tcp_nodelay);
  EXPECT_EQ(c.so_sndbuf, 65536U);
  EXPECT_EQ(c.so_rcvbuf, 131072U);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.port_file, "/tmp/port");
}

TEST(ConfigEnv, MetricsPrefixIsAPrometheusNameStart) {
  EXPECT_EQ(MustParse(WithCredentials()).metrics_prefix, "");
  EXPECT_EQ(MustParse(WithCredentials({{"METRICS_PREFIX", "tickwire_"}})).metrics_prefix,
            "tickwire_");
  EXPECT_EQ(MustParse(WithCredentials({{"METRICS_PREFIX", "ns:tw_"}})).metrics_prefix, "ns:tw_");
  EXPECT_EQ(MustParse(WithCredentials(), {"--metrics-prefix", "_x"}).metrics_prefix, "_x");
  EXPECT_EQ(
      MustParse(WithCredentials({{"METRICS_PREFIX", std::string(64, 'a')}})).metrics_prefix.size(),
      64u);
  for (const std::string bad : {"tick-wire_", "tickwire.", "9tw_", "tw_\n", "t w", "é_"}) {
    EXPECT_THAT(MustFail(WithCredentials({{"METRICS_PREFIX", bad}})),
                HasSubstr("METRICS_PREFIX (--metrics-prefix): "))
        << bad;
  }
  EXPECT_THAT(MustFail(WithCredentials({{"METRICS_PREFIX", std::string(65, 'a')}})),
              HasSubstr("at most 64 bytes"));
}

TEST(ConfigEnv, ListenAddressForms) {
  EXPECT_EQ(MustParse(WithCredentials({{"LISTEN_ADDR", "[::1]:9000"}})).listen_host, "::1");
  EXPECT_EQ(MustParse(WithCredentials({{"LISTEN_ADDR", "[::1]:9000"}})).listen_port, 9000);
  EXPECT_EQ(MustParse(WithCredentials({{"LISTEN_ADDR", "localhost:65535"}})).listen_port, 65535);
}

TEST(ConfigFlags, FlagWinsOverEnvironment) {
  const Env env = WithCredentials({{"HEARTBEAT_INTERVAL", "10s"},
                                   {"HEARTBEAT_TIMEOUT", "30s"},
                                   {"MAX_MSG_SIZE", "2048"},
                                   {"LISTEN_ADDR", "0.0.0.0:1"}});
  const Config c = MustParse(env, {"--heartbeat-interval", "3s", "--max-msg-size=4096", "--listen",
                                   "127.0.0.1:7000", "--stream-user", "bob"});
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(3));
  EXPECT_EQ(c.heartbeat_timeout, std::chrono::seconds(30));  // env still applies where no flag
  EXPECT_EQ(c.max_msg_size, 4096U);
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 7000);
  EXPECT_EQ(c.stream_user, "bob");
  EXPECT_EQ(c.stream_pass, "s3cret");
}

TEST(ConfigFlags, FlagsAloneAreEnough) {
  const Config c = MustParse({}, {"--stream-user", "u", "--stream-pass", "p"});
  EXPECT_EQ(c.stream_user, "u");
  EXPECT_EQ(c.stream_pass, "p");
}

TEST(ConfigFlags, UnknownFlagIsAnError) {
  EXPECT_THAT(MustFail(WithCredentials(), {"--no-such-flag"}), HasSubstr("command line"));
}

struct BadValue {
  const char* env;
  const char* value;
};

TEST(ConfigErrors, EveryBadValueNamesItsEnvVarOnOneLine) {
  const std::vector<BadValue> cases = {
      {"LISTEN_ADDR", "7878"},
      {"LISTEN_ADDR", ":7878"},
      {"LISTEN_ADDR", "host:65536"},
      {"LISTEN_ADDR", "host:x"},
      {"LISTEN_ADDR", "host:"},
      {"HEARTBEAT_INTERVAL", "15"},
      {"HEARTBEAT_INTERVAL", "abc"},
      {"HEARTBEAT_INTERVAL", "-1s"},
      {"HEARTBEAT_INTERVAL", "1.5s"},
      {"HEARTBEAT_INTERVAL", "0s"},
      {"HEARTBEAT_INTERVAL", ""},
      {"HEARTBEAT_TIMEOUT", "20 s"},
      {"HEARTBEAT_TIMEOUT", "10s"},  // not longer than the 15s interval
      {"HEARTBEAT_TIMEOUT", "15s"},
      {"AUTH_TIMEOUT_MS", "0"},
      {"AUTH_TIMEOUT_MS", "5s"},
      {"AUTH_TIMEOUT_MS", "600001"},
      {"BATCH_WINDOW_MS", "-1"},
      {"BATCH_WINDOW_MS", "1001"},
      {"BATCH_WINDOW_MS", "5ms"},
      {"MAX_MSG_SIZE", "1023"},
      {"MAX_MSG_SIZE", "16777217"},
      {"MAX_MSG_SIZE", "64k"},
      {"MAX_MSG_SIZE", "99999999999999999999999"},
      {"WRITE_DEADLINE_MS", "0"},
      {"WRITE_DEADLINE_MS", "x"},
      {"MAX_PENDING_BYTES", "0"},
      {"MAX_PENDING_BYTES", "65540"},  // < MAX_MSG_SIZE + 5
      {"WORKERS", "65"},
      {"WORKERS", "two"},
      {"TCP_NODELAY", "maybe"},
      {"SO_SNDBUF", "-1"},
      {"SO_RCVBUF", "lots"},
      {"LOG_LEVEL", "loud"},
      {"TLS_CERT_PATH", "/etc/cert.pem"},     // without a key
      {"TLS_KEY_PATH", "/etc/key.pem"},       // without a certificate
      {"TLS_CLIENT_CA_PATH", "/etc/ca.pem"},  // without TLS
      {"TLS_CLIENT_CN_USER", "true"},         // without mTLS
      {"TLS_HANDSHAKE_TIMEOUT", "0s"},
      {"AUTH_FAIL_BUDGET_ADDR", "0"},
      {"AUTH_FAIL_BUDGET_USER", "many"},
      {"AUTH_BACKOFF_MIN", "0s"},
      {"AUTH_BACKOFF_MAX", "10ms"},  // below the 1s minimum
      {"AUTH_RATE_TABLE_SIZE", "1"},
      {"PROXY_PROTOCOL", "auto"},
      {"PROXY_PROTOCOL", "required"},  // without trusted networks
      {"PROXY_TRUSTED_CIDRS", "10.0.0.0/33"},
      {"PROXY_TRUSTED_CIDRS", "10.0.0.0/8,nonsense"},
      {"PROXY_HEADER_TIMEOUT", "x"},
      {"DRAIN_PERIOD", "30s"},  // not shorter than the 20s deadline
      {"DRAIN_DEADLINE", "1s"},
      {"CONFIG_FILE", "/nonexistent/tickwire.conf"},
  };
  for (const BadValue& bad : cases) {
    const std::string msg = MustFail(WithCredentials({{bad.env, bad.value}}));
    EXPECT_THAT(msg, HasSubstr(bad.env)) << bad.env << "=" << bad.value;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_FALSE(msg.empty());
  }
}

TEST(ConfigSecurity, SecuritySettingsAreRead) {
  const Config c = MustParse(WithCredentials({
      {"TLS_CERT_PATH", "/c.pem"},
      {"TLS_KEY_PATH", "/k.pem"},
      {"TLS_CLIENT_CA_PATH", "/ca.pem"},
      {"TLS_CLIENT_CN_USER", "true"},
      {"TLS_HANDSHAKE_TIMEOUT", "3s"},
      {"AUTH_FAIL_BUDGET_ADDR", "2"},
      {"AUTH_FAIL_BUDGET_USER", "9"},
      {"AUTH_BACKOFF_MIN", "200ms"},
      {"AUTH_BACKOFF_MAX", "2s"},
      {"AUTH_RATE_TABLE_SIZE", "64"},
      {"PROXY_PROTOCOL", "required"},
      {"PROXY_TRUSTED_CIDRS", "10.0.0.0/8, 192.0.2.1,2001:db8::/32"},
      {"PROXY_HEADER_TIMEOUT", "750ms"},
      {"DRAIN_PERIOD", "2s"},
      {"DRAIN_DEADLINE", "3s"},
  }));
  EXPECT_TRUE(c.tls_enabled());
  EXPECT_EQ(c.tls_client_ca_path, "/ca.pem");
  EXPECT_TRUE(c.tls_client_cn_user);
  EXPECT_EQ(c.tls_handshake_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.auth_fail_budget_addr, 2u);
  EXPECT_EQ(c.auth_fail_budget_user, 9u);
  EXPECT_EQ(c.auth_backoff_min, std::chrono::milliseconds(200));
  EXPECT_EQ(c.auth_backoff_max, std::chrono::seconds(2));
  EXPECT_EQ(c.auth_rate_table_size, 64u);
  EXPECT_EQ(c.proxy_protocol, ProxyMode::kRequired);
  ASSERT_EQ(c.proxy_trusted.size(), 3u);
  EXPECT_EQ(c.proxy_trusted[1].prefix, 32u);
  EXPECT_EQ(c.proxy_header_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(c.drain_period, std::chrono::seconds(2));
  EXPECT_EQ(c.drain_deadline, std::chrono::seconds(3));
}

TEST(ConfigSecurity, UsersFileReplacesStreamCredentials) {
  const Config c = MustParse({{"USERS_FILE", "/etc/tickwire/users"}});
  EXPECT_EQ(c.users_file, "/etc/tickwire/users");
  EXPECT_TRUE(c.stream_user.empty());
  // Half a STREAM pair is still an error.
  EXPECT_THAT(MustFail({{"USERS_FILE", "/u"}, {"STREAM_USER", "x"}}), HasSubstr("STREAM_PASS"));
}

TEST(ConfigSecurity, CidrsMatchTheirNetworksOnly) {
  auto a = [](const char* text) {
    std::array<std::uint8_t, 16> b{};
    const bool v6 = std::string(text).find(':') != std::string::npos;
    EXPECT_EQ(inet_pton(v6 ? AF_INET6 : AF_INET, text, b.data()), 1) << text;
    return std::make_pair(v6, b);
  };
  auto in = [&](const char* cidr, const char* addr) {
    const auto c = Cidr::Parse(cidr);
    EXPECT_TRUE(c) << cidr;
    const auto [v6, b] = a(addr);
    return c && c->Contains(v6, b);
  };
  EXPECT_TRUE(in("10.0.0.0/8", "10.255.1.2"));
  EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(in("10.1.2.3/8", "10.9.9.9")) << "host bits are cleared";
  EXPECT_TRUE(in("192.0.2.1", "192.0.2.1"));
  EXPECT_FALSE(in("192.0.2.1", "192.0.2.2"));
  EXPECT_TRUE(in("172.16.0.0/12", "172.31.255.255"));
  EXPECT_FALSE(in("172.16.0.0/12", "172.32.0.0"));
  EXPECT_TRUE(in("0.0.0.0/0", "203.0.113.9"));
  EXPECT_TRUE(in("127.0.0.0/8", "::ffff:127.0.0.1")) << "IPv4-mapped counts as IPv4";
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8:ffff::1"));
  EXPECT_FALSE(in("2001:db8::/32", "2001:db9::1"));
  EXPECT_FALSE(in("2001:db8::/32", "10.0.0.1"));
  EXPECT_FALSE(in("10.0.0.0/8", "::1"));
  EXPECT_FALSE(Cidr::Parse("10.0.0.0/"));
  EXPECT_FALSE(Cidr::Parse("::1/129"));
  EXPECT_FALSE(Cidr::Parse("host/8"));
  // inet_pton reads a C string: an embedded NUL must not hide what follows it.
  EXPECT_FALSE(Cidr::Parse(std::string("10.0.0.1\0junk/8", 15)));
}

TEST(ConfigFile, SettingsComeFromTheFileBelowEnvAndFlags) {
  const std::string path = ::testing::TempDir() + "/tickwire-config-test.conf";
  {
    std::ofstream out(path);
    out << "# comment\n\nBATCH_WINDOW_MS = 40\nLOG_LEVEL=debug\r\nMAX_MSG_SIZE=2048\n";
  }
  const Config c = MustParse(WithCredentials({{"CONFIG_FILE", path}, {"LOG_LEVEL", "warn"}}),
                             {"--max-msg-size", "4096"});
  EXPECT_EQ(c.batch_window_ms, 40u);
  EXPECT_EQ(c.log_level, LogLevel::kWarn) << "env wins over the file";
  EXPECT_EQ(c.max_msg_size, 4096u) << "a flag wins over the file";
  {
    std::ofstream out(path);
    out << "NOT_A_SETTING=1\n";
  }
  EXPECT_THAT(MustFail(WithCredentials({{"CONFIG_FILE", path}})), HasSubstr("NOT_A_SETTING"));
  {
    std::ofstream out(path);
    out << "BATCH_WINDOW_MS\n";
  }
  EXPECT_THAT(MustFail(WithCredentials({{"CONFIG_FILE", path}})), HasSubstr(":1:"));
  std::remove(path.c_str());
}

TEST(ConfigFile, TextIsTrimmedNameValueLinesWithTheLineOfTheFirstError) {
  std::map<std::string, std::string> out;
  EXPECT_EQ(ParseConfigFileText("# c\r\n  A = 1 \r\n\nB=x=y\nA=2", out), "");
  EXPECT_EQ(out, (std::map<std::string, std::string>{{"A", "2"}, {"B", "x=y"}}));
  EXPECT_EQ(ParseConfigFileText("A=1\nno equals\n", out), "2: expected NAME=value");
  std::string many;
  for (std::size_t i = 0; i <= kMaxConfigFileLines; ++i) many += "# line\n";
  EXPECT_THAT(ParseConfigFileText(many, out), HasSubstr("more than 10000 lines"));
}

// A comment or quotes around a value are never taken as part of it (a rotated password that
// silently kept its "# rotated" note, or its quotes, locked every client out).
TEST(ConfigFile, CommentsAndQuotesAreParsedNotKept) {
  const std::map<std::string, std::string> cases = {
      {"A=newpass # rotated 2024-05", "newpass"},
      {"A=newpass\t# tab before the comment", "newpass"},
      {"A=\"new pass # not a comment\" # a comment", "new pass # not a comment"},
      {"A='say \"hi\"'", "say \"hi\""},
      {"A=\"it's\"", "it's"},
      {"A=\"  padded  \"", "  padded  "},
      {"A=\"\"", ""},
      {"A=", ""},
      {"A= # nothing", ""},
      {"A=x=y", "x=y"},
      {"A = 10.0.0.0/8, 192.168.0.0/16 ", "10.0.0.0/8, 192.168.0.0/16"},
      {"  A='#'  ", "#"},
  };
  for (const auto& [line, want] : cases) {
    std::map<std::string, std::string> out;
    EXPECT_EQ(ParseConfigFileText(line, out), "") << line;
    EXPECT_EQ(out, (std::map<std::string, std::string>{{"A", want}})) << line;
  }
}

TEST(ConfigFile, AmbiguousValuesAreRefusedWithoutEchoingThem) {
  const std::map<std::string, std::string> cases = {
      {"A=\"s3cret", "no closing \" quote"},
      {"A='s3cret", "no closing ' quote"},
      {"A=\"s3cret\"x", "text after the closing \" quote"},
      {"A='s3cret' \"", "text after the closing ' quote"},
      {"A=s3cret\"", "a quote inside an unquoted value"},
      {"A=s3cret's", "a quote inside an unquoted value"},
      {"A=s3cret#x", "'#' inside an unquoted value"},
      {"A=#s3cret", "'#' inside an unquoted value"},
      {"A=s3\x01cret", "control character"},
      {"A=s3cret\rx", "control character"},
      {"MY NAME=s3cret", "NAME of letters, digits and '_'"},
      {"=s3cret", "NAME of letters, digits and '_'"},
  };
  for (const auto& [line, why] : cases) {
    std::map<std::string, std::string> out;
    const std::string err = ParseConfigFileText("# first\n" + line + "\n", out);
    EXPECT_THAT(err, HasSubstr(why)) << line;
    EXPECT_THAT(err, ::testing::StartsWith("2: ")) << line;
    EXPECT_THAT(err, Not(HasSubstr("s3"))) << "the error repeats the value: " << err;
  }
}

TEST(ConfigFile, QuotedPasswordFromTheFileIsTheTextBetweenTheQuotes) {
  const std::string path = ::testing::TempDir() + "/tickwire-config-quotes.conf";
  {
    std::ofstream out(path);
    out << "STREAM_USER=ops # the feed user\nSTREAM_PASS=\"p#ss w0rd\"  # rotated\n";
  }
  const Config c = MustParse({{"CONFIG_FILE", path}});
  EXPECT_EQ(c.stream_user, "ops");
  EXPECT_EQ(c.stream_pass, "p#ss w0rd");
  {
    std::ofstream out(path);
    out << "STREAM_USER=ops\nSTREAM_PASS=p#ss\n";
  }
  EXPECT_THAT(MustFail({{"CONFIG_FILE", path}}), HasSubstr(":2: '#' inside an unquoted value"));
  std::remove(path.c_str());
}

TEST(ConfigReload, ChangedSettingsAndWhichReload) {
  const Config a = MustParse(WithCredentials({{"BATCH_WINDOW_MS", "5"}}));
  const Config b = MustParse(WithCredentials({{"BATCH_WINDOW_MS", "50"}, {"WORKERS", "2"}}));
  EXPECT_EQ(ChangedSettings(a, b), (std::vector<std::string>{"BATCH_WINDOW_MS", "WORKERS"}));
  EXPECT_TRUE(ChangedSettings(a, a).empty());
  EXPECT_TRUE(ReloadsOnSighup("BATCH_WINDOW_MS"));
  EXPECT_TRUE(ReloadsOnSighup("LOG_LEVEL"));
  EXPECT_TRUE(ReloadsOnSighup("USERS_FILE"));
  EXPECT_TRUE(ReloadsOnSighup("TLS_CERT_PATH"));
  EXPECT_TRUE(ReloadsOnSighup("AUTH_RATE_TABLE_SIZE"));
  EXPECT_FALSE(ReloadsOnSighup("WORKERS"));
  EXPECT_FALSE(ReloadsOnSighup("LISTEN_ADDR"));
}

// The settings table of docs/RUNBOOK.md says for each setting whether it applies on SIGHUP or
// needs a restart; config's own table (which --help and Server::Reload follow) must say the
// same, row for row, and the two must list the same settings.
TEST(ConfigReload, RunbookTableAgreesWithWhatReloads) {
  std::ifstream in(std::string(TICKWIRE_SOURCE_DIR) + "/docs/RUNBOOK.md");
  ASSERT_TRUE(in) << "docs/RUNBOOK.md not found";
  std::map<std::string, bool> runbook;  // name -> applies on SIGHUP
  for (std::string line; std::getline(in, line);) {
    // | `NAME` | `--flag` | default | applies | meaning |
    if (!line.starts_with("| `") || line.find("| `--") == std::string::npos) continue;
    std::vector<std::string> cells;
    std::istringstream fields(line.substr(1));
    for (std::string cell; std::getline(fields, cell, '|');) {
      const auto b = cell.find_first_not_of(' ');
      const auto e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    ASSERT_GE(cells.size(), 4u) << line;
    const std::string name = cells[0].substr(1, cells[0].size() - 2);
    const std::string& applies = cells[3];
    ASSERT_TRUE(applies == "restart" || applies.starts_with("SIGHUP")) << line;
    EXPECT_TRUE(runbook.emplace(name, applies.starts_with("SIGHUP")).second) << "twice: " << name;
  }
  EXPECT_GT(runbook.size(), 40u) << "the settings table was not found";
  std::size_t reloadable = 0;
  for (const auto& [env, reload] : SettingReloads()) {
    const auto row = runbook.find(std::string(env));
    if (row == runbook.end()) {
      ADD_FAILURE() << env << " has no row in the RUNBOOK settings table";
      continue;
    }
    EXPECT_EQ(row->second, reload != Reload::kRestart)
        << env << ": the RUNBOOK says " << (row->second ? "SIGHUP" : "restart");
    reloadable += reload != Reload::kRestart ? 1 : 0;
    runbook.erase(row);
  }
  for (const auto& [name, sighup] : runbook) ADD_FAILURE() << name << " is not a setting";
  EXPECT_GT(reloadable, 10u);
}

// Server::Reload applies each kind in kReloadKinds (a switch the compiler checks for every
// kind); every reloadable setting is of one of them, and every kind has a setting.
TEST(ConfigReload, EveryReloadableSettingHasAKindTheServerApplies) {
  const std::set<Reload> applied(std::begin(kReloadKinds), std::end(kReloadKinds));
  EXPECT_FALSE(applied.contains(Reload::kRestart));
  std::set<Reload> used;
  for (const auto& [env, reload] : SettingReloads()) {
    EXPECT_EQ(ReloadOf(env), reload) << env;
    EXPECT_EQ(ReloadsOnSighup(env), reload != Reload::kRestart) << env;
    if (reload == Reload::kRestart) continue;
    EXPECT_TRUE(applied.contains(reload)) << env;
    used.insert(reload);
  }
  EXPECT_EQ(used, applied);
  EXPECT_EQ(ReloadOf("NO_SUCH_SETTING"), Reload::kRestart);
}

// The example of the CONFIG_FILE format in docs/RUNBOOK.md means what the page says it means.
TEST(ConfigFile, TheRunbookExampleParsesAsDocumented) {
  std::ifstream in(std::string(TICKWIRE_SOURCE_DIR) + "/docs/RUNBOOK.md");
  ASSERT_TRUE(in) << "docs/RUNBOOK.md not found";
  std::ostringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const auto section = text.find("### The `CONFIG_FILE` format");
  ASSERT_NE(section, std::string::npos);
  const auto begin = text.find("```sh\n", section);
  ASSERT_NE(begin, std::string::npos);
  const auto end = text.find("```", begin + 6);
  std::map<std::string, std::string> out;
  ASSERT_EQ(ParseConfigFileText(text.substr(begin + 6, end - begin - 6), out), "");
  EXPECT_EQ(out,
            (std::map<std::string, std::string>{{"STREAM_USER", "feed"},
                                                {"STREAM_PASS", "n3w#pass word"},
                                                {"PROXY_TRUSTED_CIDRS", "10.0.0.0/8, 192.0.2.1"},
                                                {"METRICS_ADDR", ""},
                                                {"NATS_URL", "nats://a:4222"}}));
}

TEST(ConfigErrors, BadFlagValueNamesTheSettingToo) {
  EXPECT_THAT(MustFail(WithCredentials(), {"--max-msg-size", "12"}), HasSubstr("MAX_MSG_SIZE"));
  EXPECT_THAT(MustFail(WithCredentials(), {"--heartbeat-interval", "soon"}),
              HasSubstr("HEARTBEAT_INTERVAL"));
}

TEST(ConfigErrors, MissingCredentialsAreRefused) {
  EXPECT_THAT(MustFail({}), HasSubstr("STREAM_USER"));
  EXPECT_THAT(MustFail({{"STREAM_PASS", "p"}}), HasSubstr("STREAM_USER"));
  EXPECT_THAT(MustFail({{"STREAM_USER", "u"}}), HasSubstr("STREAM_PASS"));
  EXPECT_THAT(MustFail({{"STREAM_USER", ""}, {"STREAM_PASS", "p"}}), HasSubstr("STREAM_USER"));
  EXPECT_THAT(MustFail({{"STREAM_USER", "u"}, {"STREAM_PASS", ""}}), HasSubstr("STREAM_PASS"));
  Config c;
  EXPECT_TRUE(Validate(c).has_value());
}

TEST(ConfigErrors, ErrorsNeverEchoThePassword) {
  const std::string msg =
      MustFail({{"STREAM_USER", "u"}, {"STREAM_PASS", "hunter2"}, {"MAX_MSG_SIZE", "1"}});
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
}

// The help line that documents `env` (CLI11 may wrap a description onto following lines, so
// the line and its continuation are joined).
std::string HelpEntry(const std::string& help, const std::string& env) {
  const std::string key = "[" + env + "]";
  const auto at = help.find(key);
  if (at == std::string::npos) return {};
  const auto start = help.rfind("\n  -", at);
  auto end = help.find("\n  -", at);
  if (end == std::string::npos) end = help.size();
  return help.substr(start == std::string::npos ? 0 : start, end - start);
}

TEST(ConfigHelp, ListsEveryEnvVarWithItsDefault) {
  const ParseResult r = Parse({}, {"--help"});  // no credentials needed for --help
  const auto* exit = std::get_if<ParseExit>(&r);
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->code, 0);
  const std::map<std::string, std::string> defaults = {
      {"STREAM_USER", ""},
      {"STREAM_PASS", ""},
      {"LISTEN_ADDR", "0.0.0.0:7878"},
      {"HEARTBEAT_INTERVAL", "15s"},
      {"HEARTBEAT_TIMEOUT", "20s"},
      {"AUTH_TIMEOUT_MS", "5000"},
      {"BATCH_WINDOW_MS", "5"},
      {"MAX_MSG_SIZE", "65536"},
      {"WRITE_DEADLINE_MS", "5000"},
      {"MAX_PENDING_BYTES", "4194304"},
      {"WORKERS", "0"},
      {"TCP_NODELAY", "true"},
      {"SO_SNDBUF", "0"},
      {"SO_RCVBUF", "0"},
      {"TLS_CERT_PATH", ""},
      {"TLS_KEY_PATH", ""},
      {"LOG_LEVEL", "info"},
      {"PORT_FILE", ""},
      {"USERS_FILE", ""},
      {"AUTH_FAIL_BUDGET_ADDR", "5"},
      {"AUTH_FAIL_BUDGET_USER", "20"},
      {"AUTH_BACKOFF_MIN", "1s"},
      {"AUTH_BACKOFF_MAX", "1m"},
      {"AUTH_RATE_TABLE_SIZE", "16384"},
      {"TLS_CLIENT_CA_PATH", ""},
      {"TLS_CLIENT_CN_USER", "false"},
      {"TLS_HANDSHAKE_TIMEOUT", "10s"},
      {"PROXY_PROTOCOL", "off"},
      {"PROXY_TRUSTED_CIDRS", ""},
      {"PROXY_HEADER_TIMEOUT", "5s"},
      {"DRAIN_PERIOD", "5s"},
      {"DRAIN_DEADLINE", "20s"},
      {"CONFIG_FILE", ""},
  };
  for (const auto& [env, def] : defaults) {
    const std::string entry = HelpEntry(exit->text, env);
    ASSERT_FALSE(entry.empty()) << env << " missing from --help:\n" << exit->text;
    if (!def.empty()) {
      EXPECT_THAT(entry, HasSubstr("default " + def)) << entry;
    }
  }
  EXPECT_THAT(exit->text, HasSubstr("--version"));
}

// --help marks exactly the reloadable settings (docs/RUNBOOK.md's table is made from it).
TEST(ConfigHelp, MarksTheSettingsThatReloadOnSighup) {
  const ParseResult r = Parse({}, {"--help"});
  const auto* exit = std::get_if<ParseExit>(&r);
  ASSERT_NE(exit, nullptr);
  for (const auto& [env, reload] : SettingReloads()) {
    const std::string entry = HelpEntry(exit->text, std::string(env));
    ASSERT_FALSE(entry.empty()) << env;
    EXPECT_EQ(entry.find("(reloads on SIGHUP)") != std::string::npos, reload != Reload::kRestart)
        << entry;
  }
}

TEST(ConfigHelp, VersionExitsZero) {
  const ParseResult r = Parse({}, {"--version"});
  const auto* exit = std::get_if<ParseExit>(&r);
  ASSERT_NE(exit, nullptr);
  EXPECT_EQ(exit->code, 0);
  EXPECT_THAT(exit->text, HasSubstr("tickwire-server"));
}

TEST(ConfigMisc, EffectiveWorkersResolvesZero) {
  Config c;
  c.workers = 0;
  EXPECT_GE(c.EffectiveWorkers(), 1U);
  EXPECT_LE(c.EffectiveWorkers(), 64U);
  c.workers = 5;
  EXPECT_EQ(c.EffectiveWorkers(), 5U);
}

TEST(ConfigMisc, LogLevelNames) {
  EXPECT_EQ(LogLevelName(LogLevel::kDebug), "debug");
  EXPECT_EQ(LogLevelName(LogLevel::kInfo), "info");
  EXPECT_EQ(LogLevelName(LogLevel::kWarn), "warn");
  EXPECT_EQ(LogLevelName(LogLevel::kError), "error");
  EXPECT_EQ(MustParse(WithCredentials({{"LOG_LEVEL", "warning"}})).log_level, LogLevel::kWarn);
  EXPECT_EQ(MustParse(WithCredentials({{"LOG_LEVEL", "error"}})).log_level, LogLevel::kError);
}

TEST(ConfigMisc, ProcessEnvReadsTheRealEnvironment) {
  const EnvLookup env = ProcessEnv();
  EXPECT_FALSE(env("TICKWIRE_SURELY_UNSET_VARIABLE_42").has_value());
  EXPECT_TRUE(env("PATH").has_value());
}

}  // namespace
}  // namespace tickwire::config

namespace tickwire::config {
namespace {

TEST(ConfigMetrics, AddressPortFileAndLogRateLimit) {
  const Config d = MustParse(WithCredentials());
  EXPECT_EQ(d.metrics_host, "127.0.0.1");
  EXPECT_EQ(d.metrics_port, 9878);
  EXPECT_EQ(d.log_rate_limit, 20U);
  const Config c = MustParse(WithCredentials(
      {{"METRICS_ADDR", "[::1]:0"}, {"METRICS_PORT_FILE", "/tmp/mport"}, {"LOG_RATE_LIMIT", "0"}}));
  EXPECT_EQ(c.metrics_host, "::1");
  EXPECT_EQ(c.metrics_port, 0);
  EXPECT_EQ(c.metrics_port_file, "/tmp/mport");
  EXPECT_EQ(c.log_rate_limit, 0U);
  EXPECT_TRUE(MustParse(WithCredentials({{"METRICS_ADDR", ""}})).metrics_host.empty());
  EXPECT_EQ(MustParse(WithCredentials(), {"--metrics-addr", "0.0.0.0:9100"}).metrics_port, 9100);
  EXPECT_THAT(MustFail(WithCredentials({{"METRICS_ADDR", "9100"}})),
              HasSubstr("METRICS_ADDR (--metrics-addr)"));
  EXPECT_THAT(MustFail(WithCredentials({{"METRICS_ADDR", "h:70000"}})), HasSubstr("METRICS_ADDR"));
  EXPECT_THAT(MustFail(WithCredentials({{"LOG_RATE_LIMIT", "-1"}})), HasSubstr("LOG_RATE_LIMIT"));
}

}  // namespace
}  // namespace tickwire::config

namespace tickwire::config {
namespace {

TEST(ConfigDurable, DataDirAndSnapshotInterval) {
  const Config off = MustParse(WithCredentials());
  EXPECT_TRUE(off.data_dir.empty());
  EXPECT_EQ(off.snapshot_interval, std::chrono::seconds(10));
  const Config on =
      MustParse(WithCredentials({{"DATA_DIR", "/var/lib/tickwire"}, {"SNAPSHOT_INTERVAL", "2s"}}));
  EXPECT_EQ(on.data_dir, "/var/lib/tickwire");
  EXPECT_EQ(on.snapshot_interval, std::chrono::seconds(2));
  const Config flags =
      MustParse(WithCredentials(), {"--data-dir", "/d", "--snapshot-interval", "250ms"});
  EXPECT_EQ(flags.data_dir, "/d");
  EXPECT_EQ(flags.snapshot_interval, std::chrono::milliseconds(250));
  EXPECT_THAT(MustFail(WithCredentials({{"SNAPSHOT_INTERVAL", "10"}})),
              HasSubstr("SNAPSHOT_INTERVAL"));
  EXPECT_THAT(MustFail(WithCredentials({{"SNAPSHOT_INTERVAL", "50ms"}})),
              HasSubstr("between 100ms and 24h"));
  EXPECT_THAT(MustFail(WithCredentials({{"SNAPSHOT_INTERVAL", "25h"}})),
              HasSubstr("between 100ms and 24h"));
}

TEST(ConfigDurable, DataDirIsRefusedInTheMultiInstanceMode) {
  const std::string why =
      MustFail(WithCredentials({{"DATA_DIR", "/d"}, {"NATS_URL", "nats://127.0.0.1:4222"}}));
  EXPECT_THAT(why, HasSubstr("DATA_DIR"));
  EXPECT_THAT(why, HasSubstr("multi-instance"));
  EXPECT_FALSE(
      Validate(MustParse(WithCredentials({{"NATS_URL", "nats://127.0.0.1:4222"}}))).has_value());
}

}  // namespace
}  // namespace tickwire::config
