#include <gtest/gtest.h>

#include <cerrno>

#include "probes/connections.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::probes;
using mw::test::TempDir;

namespace {

// Captured from /proc/<pid>/net/tcp of `python3 -m http.server 18999 --bind 127.0.0.1` (port 0x4A37) while a
// python client in the same namespace stayed connected: line 2 is the server's side of that connection,
// line 3 the client's side (local port ephemeral, remote 18999), line 4 another client to port 18997.
// The kernel pads IPv4 lines with trailing spaces; they are kept.
constexpr std::string_view k_tcp_one_client =
    R"(  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 590 1 0000000061580eb3 100 0 0 10 0                       
   1: 0100007F:4A37 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 231704 1 00000000a65261c3 100 0 0 10 0                    
   2: 0100007F:4A37 0100007F:8EC2 01 00000000:00000000 00:00000000 00000000     0        0 231786 1 00000000be6bcdd1 20 0 0 10 -1                    
   3: 0100007F:8EC2 0100007F:4A37 01 00000000:00000000 00:00000000 00000000     0        0 230905 2 00000000761100ab 20 0 0 10 -1                    
   4: 0100007F:C1B2 0100007F:4A35 01 00000000:00000000 00:00000000 00000000     0        0 230909 2 0000000033580c49 20 0 0 10 -1                    
)";

// The same server a moment later: two clients wait in the accept backlog (established, inode 0: not yet
// accept()ed), a finished curl request left the server's side in TIME_WAIT (line 8) and the old client
// side in TIME_WAIT (line 3). TIME_WAIT lines are shorter: the kernel prints no fields after the inode's.
constexpr std::string_view k_tcp_backlog =
    R"(  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   1: 0100007F:4A37 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 230949 3 0000000033580c49 100 0 0 10 0                    
   2: 0100007F:4A37 0100007F:DF56 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000a5be1c7a 20 0 0 10 -1                         
   3: 0100007F:8EC2 0100007F:4A37 06 00000000:00000000 03:00001435 00000000     0        0 0 3 0000000090bdbd99                                      
   4: 0100007F:4A37 0100007F:DF4E 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000d6608a3a 20 0 0 10 -1                         
   6: 0100007F:DF4E 0100007F:4A37 01 00000000:00000000 00:00000000 00000000     0        0 231944 2 00000000a65261c3 20 0 0 10 -1                    
   7: 0100007F:DF56 0100007F:4A37 01 00000000:00000000 00:00000000 00000000     0        0 231945 2 00000000617b9918 20 0 0 10 -1                    
   8: 0100007F:4A37 0100007F:DF44 06 00000000:00000000 03:00001745 00000000     0        0 0 3 000000005f7c4f56                                      
)";

// Captured from net/tcp6 at the same time: a server on [::1]:18998 (0x4A36) with one client (lines 2-3), and a
// dual-stack listener on [::]:18997 (0x4A35) whose accepted IPv4 client shows as an IPv4-mapped address.
constexpr std::string_view k_tcp6 =
    R"(  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:4A35 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 230908 1 000000004e766939 100 0 0 10 0
   1: 00000000000000000000000001000000:4A36 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 230881 1 00000000df2011d0 100 0 0 10 0
   2: 00000000000000000000000001000000:4A36 00000000000000000000000001000000:DB3A 01 00000000:00000000 00:00000000 00000000     0        0 230907 1 00000000c7b03851 20 0 0 10 -1
   3: 00000000000000000000000001000000:DB3A 00000000000000000000000001000000:4A36 01 00000000:00000000 00:00000000 00000000     0        0 230906 2 00000000a2df1487 20 0 0 10 -1
   4: 0000000000000000FFFF00000100007F:4A35 0000000000000000FFFF00000100007F:C1B2 01 00000000:00000000 00:00000000 00000000     0        0 230910 1 00000000a3a912c8 20 0 0 10 -1
)";

constexpr std::string_view k_header =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
constexpr std::string_view k_header6 =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode\n";

std::string with_header(std::string_view header, std::string_view line) {
  return std::string(header) + std::string(line);
}

}  // namespace

TEST(Connections, CapturedIpv4Table) {
  const auto conns = parse_proc_net_tcp(k_tcp_one_client, "tcp", IpFamily::v4);
  ASSERT_TRUE(conns) << conns.error().line();
  ASSERT_EQ(conns->size(), 5U);
  const auto& any = (*conns)[0];
  EXPECT_EQ(any.local_address, "0.0.0.0");
  EXPECT_EQ(any.local_port, 2024);
  EXPECT_EQ(any.remote_address, "0.0.0.0");
  EXPECT_EQ(any.remote_port, 0);
  EXPECT_EQ(any.state, TcpState::listen);
  EXPECT_EQ(any.inode, 590U);
  const auto& server_side = (*conns)[2];
  EXPECT_EQ(server_side.local_address, "127.0.0.1");
  EXPECT_EQ(server_side.local_port, 18999);
  EXPECT_EQ(server_side.remote_address, "127.0.0.1");
  EXPECT_EQ(server_side.remote_port, 36546);
  EXPECT_EQ(server_side.state, TcpState::established);
  EXPECT_EQ(server_side.inode, 231786U);
  EXPECT_EQ((*conns)[3].local_port, 36546);
  EXPECT_EQ((*conns)[3].remote_port, 18999);
}

TEST(Connections, ShortTimeWaitLinesAndBacklog) {
  const auto conns = parse_proc_net_tcp(k_tcp_backlog, "tcp", IpFamily::v4);
  ASSERT_TRUE(conns) << conns.error().line();
  ASSERT_EQ(conns->size(), 7U);
  EXPECT_EQ((*conns)[2].state, TcpState::time_wait);
  EXPECT_EQ((*conns)[2].inode, 0U);
  EXPECT_EQ((*conns)[1].state, TcpState::established);
  EXPECT_EQ((*conns)[1].inode, 0U) << "a connection in the accept backlog has no socket inode yet";
}

TEST(Connections, CapturedIpv6Table) {
  const auto conns = parse_proc_net_tcp(k_tcp6, "tcp6", IpFamily::v6);
  ASSERT_TRUE(conns) << conns.error().line();
  ASSERT_EQ(conns->size(), 5U);
  EXPECT_EQ((*conns)[0].local_address, "::");
  EXPECT_EQ((*conns)[0].local_port, 18997);
  EXPECT_EQ((*conns)[0].state, TcpState::listen);
  EXPECT_EQ((*conns)[2].local_address, "::1");
  EXPECT_EQ((*conns)[2].local_port, 18998);
  EXPECT_EQ((*conns)[2].remote_address, "::1");
  EXPECT_EQ((*conns)[2].remote_port, 56122);
  EXPECT_EQ((*conns)[2].state, TcpState::established);
  EXPECT_EQ((*conns)[2].inode, 230907U);
  EXPECT_EQ((*conns)[4].local_address, "::ffff:127.0.0.1");
  EXPECT_EQ((*conns)[4].remote_address, "::ffff:127.0.0.1");
  EXPECT_EQ((*conns)[4].remote_port, 49586);
}

TEST(Connections, DecodesLittleEndianWords) {
  const auto v4 = parse_proc_net_tcp(
      with_header(
          k_header,
          "   0: 0100007F:2CAA 0B02A8C0:D431 01 00000000:00000000 00:00000000 00000000   997        0 4242 1\n"),
      "tcp", IpFamily::v4);
  ASSERT_TRUE(v4) << v4.error().line();
  ASSERT_EQ(v4->size(), 1U);
  EXPECT_EQ((*v4)[0].local_address, "127.0.0.1");
  EXPECT_EQ((*v4)[0].local_port, 11434);
  EXPECT_EQ((*v4)[0].remote_address, "192.168.2.11");
  EXPECT_EQ((*v4)[0].remote_port, 54321);

  const auto v6 = parse_proc_net_tcp(with_header(k_header6,
                                                 "   0: 00000000000000000000000001000000:2CAA "
                                                 "B80D0120000000000000000001000000:01BB 0B 00000000:00000000 "
                                                 "00:00000000 00000000     0        0 7 1\n"),
                                     "tcp6", IpFamily::v6);
  ASSERT_TRUE(v6) << v6.error().line();
  ASSERT_EQ(v6->size(), 1U);
  EXPECT_EQ((*v6)[0].local_address, "::1");
  EXPECT_EQ((*v6)[0].local_port, 11434);
  EXPECT_EQ((*v6)[0].remote_address, "2001:db8::1");
  EXPECT_EQ((*v6)[0].remote_port, 443);
  EXPECT_EQ((*v6)[0].state, TcpState::closing);
  EXPECT_STREQ(to_string((*v6)[0].state), "CLOSING");
}

TEST(Connections, HeaderOnlyIsEmpty) {
  const auto conns = parse_proc_net_tcp(k_header, "tcp", IpFamily::v4);
  ASSERT_TRUE(conns) << conns.error().line();
  EXPECT_TRUE(conns->empty());
}

TEST(Connections, MalformedLinesNameFileAndLine) {
  const std::string good = "   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n";
  struct Case {
    std::string line;
    std::string_view why;
  };
  const Case cases[] = {
      {"   1: 0100007:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "8 hex digits"},
      {"   1: 0100007G:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "8 hex digits"},
      {"   1: 0100007F:2CA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "8 hex digits"},
      {"   1: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "8 hex digits"},
      {"   1: 00000000000000000000000001000000:2CAA 00000000:0000 0A 0:0 0:0 0 0 0 1 1", "8 hex digits"},
      {"   1: 0100007F:2CAA 00000000:0000 0F 00000000:00000000 00:00000000 00000000 0 0 1 1", "unknown TCP state '0F'"},
      {"   1: 0100007F:2CAA 00000000:0000 00 00000000:00000000 00:00000000 00000000 0 0 1 1", "unknown TCP state '00'"},
      {"   1: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 -1 1", "decimal inode"},
      {"   1: 0100007F:2CAA 00000000:0000 0A", "at least 10 fields"},
      {"   x: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "slot number"},
      {"garbage", "at least 10 fields"},
  };
  for (const auto& c : cases) {
    const auto conns =
        parse_proc_net_tcp(with_header(k_header, good + c.line + "\n"), "/host/proc/42/net/tcp", IpFamily::v4);
    ASSERT_FALSE(conns) << c.line;
    EXPECT_EQ(conns.error().source, "/host/proc/42/net/tcp");
    EXPECT_EQ(conns.error().message.rfind("line 3: ", 0), 0U) << conns.error().message;
    EXPECT_NE(conns.error().message.find(c.why), std::string::npos) << conns.error().message;
  }
  // An IPv4 table handed to the IPv6 parser, and the other way round.
  EXPECT_FALSE(parse_proc_net_tcp(k_tcp_one_client, "tcp", IpFamily::v6));
  EXPECT_FALSE(parse_proc_net_tcp(k_tcp6, "tcp6", IpFamily::v4));
}

TEST(Connections, NotATcpTable) {
  const auto empty = parse_proc_net_tcp("", "tcp", IpFamily::v4);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);
  const auto headless = parse_proc_net_tcp(
      "   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n", "tcp", IpFamily::v4);
  ASSERT_FALSE(headless);
  EXPECT_NE(headless.error().message.find("line 1: expected the 'sl local_address ...' header"), std::string::npos)
      << headless.error().message;
  EXPECT_FALSE(parse_proc_net_tcp("MemTotal: 1000 kB\n", "tcp", IpFamily::v4));
}

TEST(Connections, CountsOnlyEstablishedClientsOfThePort) {
  const auto one = parse_proc_net_tcp(k_tcp_one_client, "tcp", IpFamily::v4);
  ASSERT_TRUE(one);
  EXPECT_EQ(count_established_clients(*one, 18999), 1U) << "the client's own side (remote port 18999) is no client";
  EXPECT_EQ(count_established_clients(*one, 2024), 0U) << "a listener alone has no clients";
  EXPECT_EQ(count_established_clients(*one, 36546), 1U);

  const auto backlog = parse_proc_net_tcp(k_tcp_backlog, "tcp", IpFamily::v4);
  ASSERT_TRUE(backlog);
  EXPECT_EQ(count_established_clients(*backlog, 18999), 2U) << "backlog counts, TIME_WAIT and LISTEN do not";

  const auto v6 = parse_proc_net_tcp(k_tcp6, "tcp6", IpFamily::v6);
  ASSERT_TRUE(v6);
  EXPECT_EQ(count_established_clients(*v6, 18998), 1U);
  EXPECT_EQ(count_established_clients(*v6, 18997), 1U) << "an IPv4 client of a dual-stack listener counts";
  EXPECT_EQ(count_established_clients({}, 18999), 0U);
}

TEST(Connections, ReadsBothFilesOfTheProcess) {
  TempDir dir;
  dir.write("proc/4242/net/tcp", k_tcp_backlog);
  dir.write("proc/4242/net/tcp6", k_tcp6);
  const auto conns = read_connections(HostRoot(dir.path()), 4242);
  ASSERT_TRUE(conns) << conns.error().line();
  ASSERT_EQ(conns->size(), 12U);
  EXPECT_EQ(conns->front().local_address, "127.0.0.1");
  EXPECT_EQ(conns->back().local_address, "::ffff:127.0.0.1");
  EXPECT_EQ(count_established_clients(*conns, 18999), 2U);
  EXPECT_EQ(count_established_clients(*conns, 18998), 1U);
}

TEST(Connections, NoTcp6IsFine) {
  TempDir dir;
  dir.write("proc/7/net/tcp", k_tcp_one_client);
  const auto conns = read_connections(HostRoot(dir.path()), 7);
  ASSERT_TRUE(conns) << conns.error().line();
  EXPECT_EQ(conns->size(), 5U);
}

TEST(Connections, MissingPidAndBrokenFiles) {
  TempDir dir;
  const auto missing = read_connections(HostRoot(dir.path()), 999999);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().source, (dir.path() / "proc/999999/net/tcp").string());

  dir.write("proc/5/net/tcp", k_tcp_one_client);
  dir.write("proc/5/net/tcp6", with_header(k_header6, "   0: nonsense\n"));
  const auto broken = read_connections(HostRoot(dir.path()), 5);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().source, (dir.path() / "proc/5/net/tcp6").string());
  EXPECT_EQ(broken.error().message.rfind("line 2: ", 0), 0U) << broken.error().message;

  EXPECT_FALSE(read_connections(HostRoot(dir.path()), 0));
  EXPECT_FALSE(read_connections(HostRoot(dir.path()), -1));
}
