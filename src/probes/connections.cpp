#include "probes/connections.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <optional>

#include "core/bytes.hpp"

namespace mw::probes {

namespace {

constexpr std::size_t k_min_fields = 10;  // sl local rem st tx:rx tr:when retrnsmt uid timeout inode

// Exactly `digits` hex digits, the whole string.
std::optional<std::uint32_t> parse_hex(std::string_view text, std::size_t digits) {
  if (text.size() != digits) {
    return std::nullopt;
  }
  std::uint32_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value, 16);
  if (ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return value;
}

// The kernel prints each 32-bit word of the address as a host-order integer (%08X), so on a
// little-endian host the bytes of a word appear reversed: 127.0.0.1 is "0100007F".
void word_to_bytes(std::uint32_t word, unsigned char* out) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<unsigned char>((word >> (8 * i)) & 0xFFU);
  }
}

struct Endpoint {
  std::string address;
  std::uint16_t port = 0;
};

std::optional<Endpoint> parse_endpoint(std::string_view text, IpFamily family) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  const auto port = parse_hex(text.substr(colon + 1), 4);
  if (!port) {
    return std::nullopt;
  }
  const auto hex = text.substr(0, colon);
  const std::size_t words = family == IpFamily::v4 ? 1 : 4;
  if (hex.size() != 8 * words) {
    return std::nullopt;
  }
  std::array<unsigned char, 16> bytes{};
  for (std::size_t w = 0; w < words; ++w) {
    const auto word = parse_hex(hex.substr(8 * w, 8), 8);
    if (!word) {
      return std::nullopt;
    }
    word_to_bytes(*word, bytes.data() + 4 * w);
  }
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  const int af = family == IpFamily::v4 ? AF_INET : AF_INET6;
  // glibc writes IPv4-mapped IPv6 addresses as ::ffff:a.b.c.d.
  if (::inet_ntop(af, bytes.data(), buffer.data(), static_cast<socklen_t>(buffer.size())) == nullptr) {
    return std::nullopt;
  }
  return Endpoint{std::string(buffer.data()), static_cast<std::uint16_t>(*port)};
}

std::optional<TcpState> parse_state(std::string_view text) {
  const auto value = parse_hex(text, 2);
  if (!value || *value < static_cast<std::uint32_t>(TcpState::established) ||
      *value > static_cast<std::uint32_t>(TcpState::new_syn_recv)) {
    return std::nullopt;
  }
  return static_cast<TcpState>(*value);
}

// Splits on runs of spaces; stops after `max` fields (the rest is not needed).
std::size_t split_fields(std::string_view line, std::array<std::string_view, k_min_fields>& fields) {
  std::size_t count = 0;
  while (count < fields.size()) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) {
      break;
    }
    line.remove_prefix(start);
    const auto end = line.find(' ');
    fields[count++] = line.substr(0, end);
    if (end == std::string_view::npos) {
      break;
    }
    line.remove_prefix(end);
  }
  return count;
}

}  // namespace

const char* to_string(TcpState state) {
  switch (state) {
    case TcpState::established:
      return "ESTABLISHED";
    case TcpState::syn_sent:
      return "SYN-SENT";
    case TcpState::syn_recv:
      return "SYN-RECV";
    case TcpState::fin_wait1:
      return "FIN-WAIT-1";
    case TcpState::fin_wait2:
      return "FIN-WAIT-2";
    case TcpState::time_wait:
      return "TIME-WAIT";
    case TcpState::close:
      return "CLOSE";
    case TcpState::close_wait:
      return "CLOSE-WAIT";
    case TcpState::last_ack:
      return "LAST-ACK";
    case TcpState::listen:
      return "LISTEN";
    case TcpState::closing:
      return "CLOSING";
    case TcpState::new_syn_recv:
      return "NEW-SYN-RECV";
  }
  return "UNKNOWN";
}

Result<std::vector<TcpConnection>> parse_proc_net_tcp(std::string_view text, std::string_view source, IpFamily family) {
  std::vector<TcpConnection> connections;
  int line_no = 0;
  std::optional<Error> error;
  for_each_line(text, [&](std::string_view line) {
    ++line_no;
    if (error) {
      return;
    }
    line = trim(line);
    const auto bad = [&](std::string_view why) {
      error = Error{std::string(source), fmt::format("line {}: {} in '{}'", line_no, why, line.substr(0, 100))};
    };
    if (line_no == 1) {
      if (line.substr(0, 3) != "sl ") {
        bad("expected the 'sl local_address ...' header");
      }
      return;
    }
    if (line.empty()) {
      return;
    }
    std::array<std::string_view, k_min_fields> fields{};
    if (split_fields(line, fields) < k_min_fields) {
      bad(fmt::format("expected at least {} fields", k_min_fields));
      return;
    }
    if (fields[0].size() < 2 || fields[0].back() != ':' || !parse_u64(fields[0].substr(0, fields[0].size() - 1))) {
      bad("expected a slot number 'N:'");
      return;
    }
    auto local = parse_endpoint(fields[1], family);
    auto remote = parse_endpoint(fields[2], family);
    if (!local || !remote) {
      bad(family == IpFamily::v4 ? "expected addresses as 8 hex digits ':' 4 hex digits"
                                 : "expected addresses as 32 hex digits ':' 4 hex digits");
      return;
    }
    const auto state = parse_state(fields[3]);
    if (!state) {
      bad(fmt::format("unknown TCP state '{}'", fields[3]));
      return;
    }
    const auto inode = parse_u64(fields[9]);
    if (!inode) {
      bad("expected a decimal inode in field 10");
      return;
    }
    connections.push_back(TcpConnection{std::move(local->address), local->port, std::move(remote->address),
                                        remote->port, *state, *inode});
  });
  if (error) {
    return unexpected(*error);
  }
  if (line_no == 0) {
    return fail(std::string(source), "empty file: not a /proc/net/tcp table");
  }
  return connections;
}

Result<std::vector<TcpConnection>> read_connections(const HostRoot& root, std::int64_t pid) {
  if (pid <= 0) {
    return fail(fmt::format("pid {}", pid), "not a process id");
  }
  std::vector<TcpConnection> all;
  for (const auto& [name, family] : {std::pair{"tcp", IpFamily::v4}, std::pair{"tcp6", IpFamily::v6}}) {
    const auto path = root.proc(fmt::format("{}/net/{}", pid, name));
    auto text = read_file(path);
    if (!text) {
      if (family == IpFamily::v6 && text.error().code == ENOENT) {
        break;  // a kernel without IPv6 (or ipv6.disable=1) has no tcp6
      }
      return unexpected(text.error());
    }
    auto parsed = parse_proc_net_tcp(*text, path.string(), family);
    if (!parsed) {
      return unexpected(parsed.error());
    }
    all.insert(all.end(), std::make_move_iterator(parsed->begin()), std::make_move_iterator(parsed->end()));
  }
  return all;
}

std::size_t count_established_clients(const std::vector<TcpConnection>& connections, std::uint16_t server_port) {
  return static_cast<std::size_t>(std::count_if(connections.begin(), connections.end(), [&](const TcpConnection& c) {
    return c.state == TcpState::established && c.local_port == server_port;
  }));
}

}  // namespace mw::probes
