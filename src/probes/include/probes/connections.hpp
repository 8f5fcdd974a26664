// TCP connections seen by a process: /proc/<pid>/net/tcp and /proc/<pid>/net/tcp6.
// Those files list every socket of the process's network namespace (not only its
// own), which is what a drain check needs: is anyone still connected to the
// server's API port? parse_* is pure; read_* reads the two files under the host root.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

// The kernel's TCP states as /proc/net/tcp prints them in the "st" column (include/net/tcp_states.h).
enum class TcpState : std::uint8_t {
  established = 0x01,
  syn_sent = 0x02,
  syn_recv = 0x03,
  fin_wait1 = 0x04,
  fin_wait2 = 0x05,
  time_wait = 0x06,
  close = 0x07,
  close_wait = 0x08,
  last_ack = 0x09,
  listen = 0x0A,
  closing = 0x0B,
  new_syn_recv = 0x0C,
};
// "ESTABLISHED", "LISTEN", ... as ss(8) and netstat(8) name them.
[[nodiscard]] const char* to_string(TcpState state);

// Which file a text came from: net/tcp holds IPv4 sockets, net/tcp6 IPv6 ones
// (including IPv4 peers of dual-stack sockets, as ::ffff:a.b.c.d).
enum class IpFamily { v4, v6 };

struct TcpConnection {
  std::string local_address;  // "127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0"
  std::uint16_t local_port = 0;
  std::string remote_address;
  std::uint16_t remote_port = 0;
  TcpState state = TcpState::close;
  std::uint64_t inode = 0;  // the socket inode (matches /proc/<pid>/fd links "socket:[inode]"); 0 once orphaned
};

// Skips the header line; a malformed line fails with an error naming `source` and the line number.
// Addresses are decoded as printed by a little-endian kernel (x86-64, arm64).
[[nodiscard]] Result<std::vector<TcpConnection>> parse_proc_net_tcp(std::string_view text, std::string_view source,
                                                                    IpFamily family);

// Both files of the process's namespace: root/proc/<pid>/net/tcp, then tcp6 (absent when the kernel has no IPv6).
// A missing pid fails with ENOENT in Error::code.
[[nodiscard]] Result<std::vector<TcpConnection>> read_connections(const HostRoot& root, std::int64_t pid);

// ESTABLISHED connections whose local port is server_port: clients connected to the server. Connections
// the server opened itself (its local port is ephemeral, the remote one may equal server_port) do not count.
[[nodiscard]] std::size_t count_established_clients(const std::vector<TcpConnection>& connections,
                                                    std::uint16_t server_port);

}  // namespace mw::probes
