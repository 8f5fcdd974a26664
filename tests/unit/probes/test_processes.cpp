#include <gtest/gtest.h>

#include <cerrno>

#include "probes/processes.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::probes;
using namespace std::string_literals;
using mw::test::TempDir;

namespace {

// Modelled on a real /proc/<pid>/status (Linux 6.x): an Ollama runner holding 9.4 GB.
const std::string k_runner_status =
    "Name:\tollama\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Ngid:\t0\n"
    "Pid:\t4242\n"
    "PPid:\t4200\n"
    "TracerPid:\t0\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t256\n"
    "Groups:\t \n"
    "NStgid:\t4242\t37\n"
    "NSpid:\t4242\t37\n"
    "NSpgid:\t4200\t1\n"
    "NSsid:\t4200\t1\n"
    "Kthread:\t0\n"
    "VmPeak:\t15021288 kB\n"
    "VmSize:\t14985012 kB\n"
    "VmLck:\t       0 kB\n"
    "VmPin:\t       0 kB\n"
    "VmHWM:\t 9437184 kB\n"
    "VmRSS:\t 9175040 kB\n"
    "RssAnon:\t 8126464 kB\n"
    "RssFile:\t 1044480 kB\n"
    "RssShmem:\t    4096 kB\n"
    "VmData:\t 8912896 kB\n"
    "VmStk:\t     132 kB\n"
    "VmExe:\t   52236 kB\n"
    "VmLib:\t   39128 kB\n"
    "VmPTE:\t   19840 kB\n"
    "VmSwap:\t       0 kB\n"
    "HugetlbPages:\t       0 kB\n"
    "CoreDumping:\t0\n"
    "THP_enabled:\t1\n"
    "untag_mask:\t0xffffffffffffffff\n"
    "Threads:\t23\n"
    "SigQ:\t0/96364\n"
    "SigPnd:\t0000000000000000\n"
    "ShdPnd:\t0000000000000000\n"
    "SigBlk:\t0000000000000000\n"
    "SigIgn:\t0000000000000000\n"
    "SigCgt:\tfffffffd7fc1feff\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t00000000a80425fb\n"
    "CapEff:\t00000000a80425fb\n"
    "CapBnd:\t00000000a80425fb\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t0\n"
    "Seccomp:\t2\n"
    "Seccomp_filters:\t1\n"
    "Speculation_Store_Bypass:\tthread vulnerable\n"
    "SpeculationIndirectBranch:\tconditional enabled\n"
    "Cpus_allowed:\tffff\n"
    "Cpus_allowed_list:\t0-15\n"
    "Mems_allowed:\t00000000,00000001\n"
    "Mems_allowed_list:\t0\n"
    "voluntary_ctxt_switches:\t18230\n"
    "nonvoluntary_ctxt_switches:\t412\n";

// A kernel thread: no Vm*/Rss* lines at all.
const std::string k_kthreadd_status =
    "Name:\tkthreadd\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t2\n"
    "Ngid:\t0\n"
    "Pid:\t2\n"
    "PPid:\t0\n"
    "TracerPid:\t0\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t64\n"
    "Groups:\t \n"
    "NStgid:\t2\n"
    "NSpid:\t2\n"
    "NSpgid:\t0\n"
    "NSsid:\t0\n"
    "Kthread:\t1\n"
    "Threads:\t1\n"
    "SigQ:\t0/96364\n"
    "SigIgn:\tffffffffffffffff\n"
    "CapEff:\t000001ffffffffff\n"
    "Speculation_Store_Bypass:\tvulnerable\n"
    "Cpus_allowed_list:\t0-1\n"
    "voluntary_ctxt_switches:\t75\n"
    "nonvoluntary_ctxt_switches:\t0\n";

// A status line as a kernel older than 4.5 writes it: VmRSS but no RssAnon/RssFile/RssShmem.
std::string status_of(const std::string& name, std::int64_t pid, std::int64_t ppid, const std::string& vmrss) {
  return "Name:\t" + name + "\nState:\tS (sleeping)\nPid:\t" + std::to_string(pid) + "\nPPid:\t" +
         std::to_string(ppid) + "\nVmRSS:\t" + vmrss + "\nThreads:\t1\n";
}

void add_process(const TempDir& root, std::int64_t pid, const std::string& status, const std::string& comm,
                 const std::string& cmdline) {
  const auto dir = "proc/" + std::to_string(pid) + "/";
  root.write(dir + "status", status);
  root.write(dir + "comm", comm);
  root.write(dir + "cmdline", cmdline);
}

}  // namespace

TEST(ProcStatus, ParsesARealStatusFile) {
  const auto info = parse_proc_status(k_runner_status, "/proc/4242/status");
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->pid, 4242);
  EXPECT_EQ(info->ppid, 4200);
  EXPECT_EQ(info->comm, "ollama");
  EXPECT_EQ(info->rss_bytes, 9175040ULL * 1024);
  EXPECT_EQ(info->rss_anon_bytes, 8126464ULL * 1024);
  EXPECT_EQ(info->rss_file_bytes, 1044480ULL * 1024);
  EXPECT_EQ(info->rss_shmem_bytes, 4096ULL * 1024);
  EXPECT_TRUE(info->argv.empty()) << "status has no command line";
}

TEST(ProcStatus, KernelThreadHasNoMemoryFields) {
  const auto info = parse_proc_status(k_kthreadd_status, "s");
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->comm, "kthreadd");
  EXPECT_EQ(info->ppid, 0) << "PPid 0 is a real value, not unknown";
  EXPECT_FALSE(info->rss_bytes);
  EXPECT_FALSE(info->rss_anon_bytes);
  EXPECT_FALSE(info->rss_file_bytes);
  EXPECT_FALSE(info->rss_shmem_bytes);
}

TEST(ProcStatus, OlderKernelWithoutRssBreakdown) {
  const auto info = parse_proc_status(status_of("python3", 77, 1, "  123 kB"), "s");
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->rss_bytes, 123U * 1024);
  EXPECT_FALSE(info->rss_anon_bytes) << "unknown, not 0";
}

TEST(ProcStatus, NamesKeepSpacesAndColons) {
  const auto info = parse_proc_status("Name:\tweb: worker 1\nPid:\t5\nPPid:\t1\n", "s");
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->comm, "web: worker 1");
  EXPECT_EQ(parse_proc_status("Name:\t\nPid:\t5\n", "s")->comm, "") << "an empty name is still a Name line";
  EXPECT_TRUE(parse_proc_status("Name:\tx\nPid:\t5", "s")) << "no final newline";
}

TEST(ProcStatus, MalformedLinesAreErrors) {
  const auto bad_rss = parse_proc_status("Name:\tx\nPid:\t5\nVmRSS:\tlots kB\n", "/proc/5/status");
  ASSERT_FALSE(bad_rss);
  EXPECT_EQ(bad_rss.error().line(), "/proc/5/status: line 3: VmRSS: expected a size like '123 kB', got 'lots kB'");
  const auto no_colon = parse_proc_status("Name:\tx\ngarbage here\n", "/proc/5/status");
  ASSERT_FALSE(no_colon);
  EXPECT_EQ(no_colon.error().line(), "/proc/5/status: line 2: expected 'Key: value', got 'garbage here'");
  for (const std::string text :
       {"Name:\tx\nPPid:\t-1\n", "Name:\tx\nPPid:\tone\n", "Name:\tx\nPid:\t\n", "Name:\tx\nVmRSS:\t12 MB\n",
        "Name:\tx\nRssAnon:\t-4 kB\n", "Name:\tx\nVmRSS:\t99999999999999999999 kB\n", "Name:\tx\n:\t1\n", "", "\n\n",
        "Pid:\t5\nVmRSS:\t1 kB\n", "<html>404</html>"}) {
    const auto info = parse_proc_status(text, "/proc/5/status");
    ASSERT_FALSE(info) << text;
    EXPECT_EQ(info.error().source, "/proc/5/status");
    EXPECT_NE(info.error().code, ENOENT) << "malformed is not vanished";
  }
  EXPECT_NE(parse_proc_status("Pid:\t5\n", "s").error().message.find("no Name line"), std::string::npos);
  EXPECT_TRUE(parse_proc_status("Name:\tx\nVmFlags:\t??\nFutureField:\t-3 kB\n", "s")) << "unknown keys are ignored";
}

TEST(ProcCmdline, SplitsAtNul) {
  EXPECT_EQ(parse_cmdline("/bin/ollama\0serve\0"s), (std::vector<std::string>{"/bin/ollama", "serve"}));
  EXPECT_EQ(parse_cmdline("/bin/ollama\0serve"s), (std::vector<std::string>{"/bin/ollama", "serve"}))
      << "trailing NUL is optional";
  EXPECT_EQ(parse_cmdline("prog\0\0--flag\0"s), (std::vector<std::string>{"prog", "", "--flag"}))
      << "empty arguments survive";
  EXPECT_EQ(parse_cmdline("prog\0\0"s), (std::vector<std::string>{"prog", ""}));
  EXPECT_EQ(parse_cmdline("nginx: worker process"), (std::vector<std::string>{"nginx: worker process"}))
      << "setproctitle rewrites argv[0] with spaces";
  EXPECT_TRUE(parse_cmdline("").empty()) << "kernel thread";
  EXPECT_EQ(parse_cmdline("\0"s), (std::vector<std::string>{""}));
}

TEST(ReadProcess, FromAFixtureTree) {
  TempDir root;
  add_process(root, 4242, k_runner_status, "ollama\n", "/usr/bin/ollama\0runner\0--model\0/root/.ollama/b\0"s);
  const auto info = read_process(HostRoot(root.path()), 4242);
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->pid, 4242);
  EXPECT_EQ(info->ppid, 4200);
  EXPECT_EQ(info->comm, "ollama") << "from comm, without its newline";
  EXPECT_EQ(info->argv, (std::vector<std::string>{"/usr/bin/ollama", "runner", "--model", "/root/.ollama/b"}));
  EXPECT_EQ(info->rss_bytes, 9175040ULL * 1024);
  EXPECT_EQ(info->rss_anon_bytes, 8126464ULL * 1024);
}

TEST(ReadProcess, CommFileWinsOverStatusName) {
  TempDir root;
  // status escapes a newline in the name; comm has it raw. comm is what find_processes_by_comm compares.
  add_process(root, 10, status_of("a\\nb", 10, 1, "8 kB"), "a\nb\n", "a\0"s);
  const auto info = read_process(HostRoot(root.path()), 10);
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->comm, "a\nb");
}

TEST(ReadProcess, KernelThreadHasNoArgv) {
  TempDir root;
  add_process(root, 2, k_kthreadd_status, "kthreadd\n", "");
  const auto info = read_process(HostRoot(root.path()), 2);
  ASSERT_TRUE(info) << info.error().line();
  EXPECT_EQ(info->comm, "kthreadd");
  EXPECT_TRUE(info->argv.empty());
  EXPECT_FALSE(info->rss_bytes);
}

TEST(ReadProcess, VanishedProcessIsENOENT) {
  TempDir root;
  add_process(root, 4242, k_runner_status, "ollama\n", "ollama\0"s);
  const HostRoot host(root.path());
  const auto missing = read_process(host, 9999);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().source, (root.path() / "proc" / "9999").string());
  EXPECT_NE(missing.error().message.find("no process 9999"), std::string::npos) << missing.error().line();

  // Exited between reading status and comm: the directory is half there.
  root.write("proc/4300/status", k_runner_status);
  const auto half = read_process(host, 4300);
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().code, ENOENT);
  root.write("proc/4301/status", "");
  EXPECT_EQ(read_process(host, 4301).error().code, ENOENT) << "an empty status is a process that went away";

  EXPECT_FALSE(read_process(host, 0));
  EXPECT_FALSE(read_process(host, -1));
}

TEST(ReadProcess, MalformedStatusIsNotVanished) {
  TempDir root;
  add_process(root, 7, "Name:\tx\nVmRSS:\tmany\n", "x\n", "x\0"s);
  const auto info = read_process(HostRoot(root.path()), 7);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().code, ENOENT);
  EXPECT_EQ(info.error().source, (root.path() / "proc/7/status").string());
}

TEST(ProcEnviron, FindsOneVariable) {
  const auto env = "PATH=/usr/bin\0OLLAMA_HOST=0.0.0.0:11434\0OLLAMA_HOST_X=no\0EMPTY=\0OLLAMA_HOST=second\0"s;
  EXPECT_EQ(parse_environ_value(env, "OLLAMA_HOST"), "0.0.0.0:11434") << "the first one wins";
  EXPECT_EQ(parse_environ_value(env, "EMPTY"), "") << "set but empty";
  EXPECT_FALSE(parse_environ_value(env, "OLLAMA")) << "no prefix matches";
  EXPECT_FALSE(parse_environ_value(env, "HOME"));
  EXPECT_FALSE(parse_environ_value(env, ""));
  EXPECT_EQ(parse_environ_value("A=1=2", "A"), "1=2") << "no trailing NUL; '=' in the value";
  EXPECT_FALSE(parse_environ_value("", "A")) << "kernel thread";

  TempDir root;
  add_process(root, 4242, k_runner_status, "ollama\n", "ollama\0serve\0"s);
  root.write("proc/4242/environ", env);
  const HostRoot host(root.path());
  const auto value = read_environ_value(host, 4242, "OLLAMA_HOST");
  ASSERT_TRUE(value) << value.error().line();
  EXPECT_EQ(*value, "0.0.0.0:11434");
  EXPECT_FALSE(read_environ_value(host, 4242, "HOME").value());
  EXPECT_EQ(read_environ_value(host, 9999, "HOME").error().code, ENOENT);
}

TEST(CgroupProcs, ParsesSortsAndDropsInvisiblePids) {
  const auto pids = parse_cgroup_procs("4250\n4242\n\n4242\n0\n17\n", "cgroup.procs");
  ASSERT_TRUE(pids) << pids.error().line();
  EXPECT_EQ(*pids, (std::vector<std::int64_t>{17, 4242, 4250}));
  EXPECT_TRUE(parse_cgroup_procs("", "c")->empty()) << "an empty cgroup";
  EXPECT_EQ(parse_cgroup_procs("12", "c").value(), (std::vector<std::int64_t>{12})) << "no final newline";
  const auto bad = parse_cgroup_procs("12\nabc\n", "/sys/fs/cgroup/x/cgroup.procs");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().line(), "/sys/fs/cgroup/x/cgroup.procs: line 2: expected a pid, got 'abc'");
  EXPECT_FALSE(parse_cgroup_procs("-5\n", "c"));
  EXPECT_FALSE(parse_cgroup_procs("1 2\n", "c"));
}

TEST(CgroupProcs, ReadsTheContainersCgroupAndItsChildren) {
  TempDir root;
  const std::string id(64, 'a');
  const std::string scope = "system.slice/docker-" + id + ".scope";
  root.write("sys/fs/cgroup/" + scope + "/cgroup.procs", "4242\n4200\n");
  root.write("sys/fs/cgroup/" + scope + "/memory.current", "9395240960\n");
  root.write("sys/fs/cgroup/" + scope + "/runners/cgroup.procs", "4300\n");
  root.write("sys/fs/cgroup/" + scope + "/runners/deeper/cgroup.procs", "4301\n4242\n");
  root.write("sys/fs/cgroup/system.slice/other.service/cgroup.procs", "1\n");
  const CgroupLayout layout{CgroupMode::v2, root.path() / "sys/fs/cgroup", std::nullopt};
  const auto pids = read_cgroup_pids(layout, CgroupLocation{scope, std::nullopt});
  ASSERT_TRUE(pids) << pids.error().line();
  EXPECT_EQ(*pids, (std::vector<std::int64_t>{4200, 4242, 4300, 4301}));

  const auto gone = read_cgroup_pids(layout, CgroupLocation{"system.slice/docker-gone.scope", std::nullopt});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ENOENT);
}

TEST(CgroupProcs, V1MemoryHierarchy) {
  TempDir root;
  const std::string id(64, 'b');
  root.write("sys/fs/cgroup/memory/docker/" + id + "/cgroup.procs", "15798\n");
  root.write("sys/fs/cgroup/memory/docker/" + id + "/tasks", "15798\n15799\n");
  const CgroupLayout layout{CgroupMode::v1, root.path() / "sys/fs/cgroup/memory", std::nullopt};
  const auto pids = read_cgroup_pids(layout, CgroupLocation{"docker/" + id, std::nullopt});
  ASSERT_TRUE(pids) << pids.error().line();
  EXPECT_EQ(*pids, (std::vector<std::int64_t>{15798})) << "processes, not threads";

  root.write("sys/fs/cgroup/memory/docker/" + id + "/cgroup.procs", "15798\nnot-a-pid\n");
  const auto bad = read_cgroup_pids(layout, CgroupLocation{"docker/" + id, std::nullopt});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("expected a pid"), std::string::npos);
}

TEST(FindProcesses, ByCommAcrossProc) {
  TempDir root;
  add_process(root, 1, status_of("systemd", 1, 0, "12000 kB"), "systemd\n", "/sbin/init\0"s);
  add_process(root, 2, k_kthreadd_status, "kthreadd\n", "");
  add_process(root, 4242, k_runner_status, "ollama\n", "/bin/ollama\0serve\0"s);
  add_process(root, 987, status_of("ollama", 987, 1, "1 kB"), "ollama\n", "/bin/ollama\0runner\0"s);
  add_process(root, 4300, status_of("ollama_llama_se", 4300, 4242, "1 kB"), "ollama_llama_se\n", "x\0"s);
  add_process(root, 4400, status_of("ollamax", 4400, 1, "1 kB"), "ollamax\n", "x\0"s);
  root.write("proc/4500/status", status_of("ollama", 4500, 1, "1 kB"));  // vanished: no comm left
  root.write("proc/meminfo", "MemTotal: 1 kB\n");
  root.write("proc/sys/kernel/ostype", "Linux\n");
  root.write("proc/12ab/comm", "ollama\n");  // not a pid directory
  const HostRoot host(root.path());

  const auto ollama = find_processes_by_comm(host, "ollama");
  ASSERT_TRUE(ollama) << ollama.error().line();
  EXPECT_EQ(*ollama, (std::vector<std::int64_t>{987, 4242})) << "numeric order, exact match";
  EXPECT_EQ(find_processes_by_comm(host, "ollama_llama_server").value(), (std::vector<std::int64_t>{4300}))
      << "the kernel keeps 15 characters";
  EXPECT_EQ(find_processes_by_comm(host, "kthreadd").value(), (std::vector<std::int64_t>{2}));
  EXPECT_TRUE(find_processes_by_comm(host, "docker")->empty());
  EXPECT_TRUE(find_processes_by_comm(host, "")->empty());
  EXPECT_TRUE(find_processes_by_comm(host, "olla")->empty()) << "no prefix matches";
}

TEST(FindProcesses, NoProcIsAnError) {
  TempDir root;
  const auto pids = find_processes_by_comm(HostRoot(root.path()), "ollama");
  ASSERT_FALSE(pids);
  EXPECT_EQ(pids.error().code, ENOENT);
  EXPECT_EQ(pids.error().source, (root.path() / "proc").string());
}

TEST(ReadProcess, KeepsTheFirstArgumentsOfAHugeCommandLine) {
  TempDir root;
  std::string cmdline = "/usr/bin/ollama\0runner\0"s;
  for (int i = 0; i < 5000; ++i) {
    cmdline += std::string(300, 'x') + '\0';
  }
  add_process(root, 77, k_runner_status, "ollama\n", cmdline);
  const auto info = read_process(HostRoot(root.path()), 77);
  ASSERT_TRUE(info) << info.error().line();
  ASSERT_EQ(info->argv.size(), k_max_argv_kept);
  EXPECT_EQ(info->argv[0], "/usr/bin/ollama");
  EXPECT_EQ(info->argv[1], "runner");
  EXPECT_EQ(info->argv[2].size(), k_max_arg_bytes);
}
