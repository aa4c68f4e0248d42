/* bench/sim/tables.c — what a simulated host runs: Windows and Linux programs with their
 * command lines, parents and habits (files they write, where they connect, DLLs they
 * load), plus network destinations and registry values. Data only; model.c animates it.
 * Plausible rather than exhaustive: enough variety that indexes, process trees and Sigma
 * rules see realistic shapes, no attack content (mamori-bench injects that on purpose). */
#include "model.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
    T_NONE = 0,
    /* Windows */
    W_SYSTEM, W_WININIT, W_SERVICES, W_LSASS, W_SVCHOST, W_EXPLORER, W_CMD, W_POWERSHELL, W_CONHOST,
    W_CHROME, W_MSEDGE, W_OUTLOOK, W_WINWORD, W_EXCEL, W_TEAMS, W_NOTEPAD, W_CODE, W_GIT, W_WHOAMI,
    W_IPCONFIG, W_NET, W_PING, W_FINDSTR, W_TASKHOSTW, W_WMIPRVSE, W_BGTASKHOST, W_RUNTIMEBROKER,
    W_MSIEXEC, W_SPLWOW64, W_ONEDRIVE, W_SEARCHINDEXER, W_SEARCHPROTOCOLHOST, W_MPCMDRUN, W_SCHTASKS,
    W_RUNDLL32,
    /* Linux */
    L_SYSTEMD, L_SSHD, L_CRON, L_DOCKERD, L_BASH, L_SH, L_LS, L_PS, L_CURL, L_PYTHON3, L_GIT, L_VIM,
    L_GREP, L_SUDO, L_APT, L_SYSTEMCTL, L_SSH, L_TAR, L_LOGROTATE, L_CONTAINERD_SHIM, L_NGINX, L_JOURNALD,
    TEMPLATE_COUNT
};

#define SYS32 "C:\\Windows\\System32\\"
#define MS "Microsoft Corporation"
#define WIN(...) .linux_host = false, __VA_ARGS__
#define LIN(...) .linux_host = true, __VA_ARGS__

proc_template model_templates[TEMPLATE_COUNT] = {
    [W_SYSTEM] = {WIN(.name = "System", .exe = "System", .cwd = "C:\\Windows\\system32\\", .cmdlines = {""},
                      .original_file_name = "-", .description = "NT Kernel & System", .company = MS,
                      .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM, .net = NET_DC, .dlls = DLLS_BASE)},
    [W_WININIT] = {WIN(.name = "wininit.exe", .exe = SYS32 "wininit.exe", .cwd = "C:\\Windows\\system32\\",
                       .cmdlines = {"wininit.exe"}, .original_file_name = "WinInit.exe",
                       .description = "Windows Start-Up Application", .company = MS, .user = USER_SYSTEM,
                       .integrity = 2, .files = FILES_SYSTEM, .dlls = DLLS_BASE)},
    [W_SERVICES] = {WIN(.name = "services.exe", .exe = SYS32 "services.exe", .cwd = "C:\\Windows\\system32\\",
                        .cmdlines = {"C:\\Windows\\system32\\services.exe"}, .original_file_name = "services.exe",
                        .description = "Services and Controller app", .company = MS, .user = USER_SYSTEM,
                        .integrity = 2, .files = FILES_SYSTEM, .dlls = DLLS_BASE, .registry = true,
                        .children = {W_SVCHOST, W_SVCHOST, W_MSIEXEC, W_SEARCHINDEXER, W_MPCMDRUN})},
    [W_LSASS] = {WIN(.name = "lsass.exe", .exe = SYS32 "lsass.exe", .cwd = "C:\\Windows\\system32\\",
                     .cmdlines = {"C:\\Windows\\system32\\lsass.exe"}, .original_file_name = "lsass.exe",
                     .description = "Local Security Authority Process", .company = MS, .user = USER_SYSTEM,
                     .integrity = 2, .files = FILES_SYSTEM, .net = NET_DC, .dlls = DLLS_BASE)},
    [W_SVCHOST] = {WIN(.name = "svchost.exe", .exe = SYS32 "svchost.exe", .cwd = "C:\\Windows\\system32\\",
                       .cmdlines = {"C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
                                    "C:\\Windows\\system32\\svchost.exe -k LocalService -p -s EventLog",
                                    "C:\\Windows\\System32\\svchost.exe -k NetworkService -p -s Dnscache",
                                    "C:\\Windows\\system32\\svchost.exe -k wusvcs -p -s WaaSMedicSvc"},
                       .original_file_name = "svchost.exe", .description = "Host Process for Windows Services",
                       .company = MS, .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM,
                       .net = NET_WINDOWS, .dlls = DLLS_BASE, .registry = true,
                       .children = {W_TASKHOSTW, W_WMIPRVSE, W_BGTASKHOST, W_RUNTIMEBROKER, W_SCHTASKS, W_RUNDLL32})},
    [W_EXPLORER] = {WIN(.name = "explorer.exe", .exe = "C:\\Windows\\explorer.exe", .cwd = "C:\\Windows\\",
                        .cmdlines = {"C:\\Windows\\Explorer.EXE"}, .original_file_name = "EXPLORER.EXE",
                        .description = "Windows Explorer", .company = MS, .user = USER_HOST, .files = FILES_DOCS,
                        .net = NET_WINDOWS, .dlls = DLLS_BASE, .registry = true,
                        .children = {W_CHROME, W_MSEDGE, W_OUTLOOK, W_WINWORD, W_EXCEL, W_TEAMS, W_NOTEPAD, W_CMD,
                                     W_POWERSHELL, W_CODE, W_ONEDRIVE, W_CHROME})},
    [W_CMD] = {WIN(.name = "cmd.exe", .exe = SYS32 "cmd.exe", .cwd = "C:\\Users\\{U}\\",
                   .cmdlines = {"\"C:\\Windows\\system32\\cmd.exe\" ", "cmd.exe /c \"dir /b %TEMP%\"",
                                "C:\\Windows\\system32\\cmd.exe /c ipconfig /all",
                                "cmd.exe /c git status"},
                   .original_file_name = "Cmd.Exe", .description = "Windows Command Processor", .company = MS,
                   .user = USER_HOST, .files = FILES_TEMP, .dlls = DLLS_BASE,
                   .children = {W_CONHOST, W_WHOAMI, W_IPCONFIG, W_NET, W_PING, W_FINDSTR, W_GIT, W_POWERSHELL})},
    [W_POWERSHELL] = {WIN(.name = "powershell.exe", .exe = SYS32 "WindowsPowerShell\\v1.0\\powershell.exe",
                          .cwd = "C:\\Users\\{U}\\",
                          .cmdlines = {"\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" ",
                                       "powershell.exe -NoProfile -Command Get-Process | Sort-Object CPU",
                                       "powershell.exe -ExecutionPolicy Bypass -File C:\\Users\\{U}\\scripts\\"
                                       "backup-{N}.ps1",
                                       "powershell.exe Get-ChildItem -Recurse C:\\Users\\{U}\\Documents"},
                          .original_file_name = "PowerShell.EXE", .description = "Windows PowerShell",
                          .company = MS, .user = USER_HOST, .files = FILES_TEMP, .net = NET_WEB,
                          .dlls = DLLS_SCRIPT, .registry = true,
                          .children = {W_CONHOST, W_WHOAMI, W_NET, W_CMD, W_IPCONFIG})},
    [W_CONHOST] = {WIN(.name = "conhost.exe", .exe = SYS32 "conhost.exe", .cwd = "C:\\Windows\\system32\\",
                       .cmdlines = {"\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1"},
                       .original_file_name = "CONHOST.EXE", .description = "Console Window Host", .company = MS,
                       .user = USER_HOST, .files = FILES_TEMP, .dlls = DLLS_BASE)},
    [W_CHROME] = {WIN(.name = "chrome.exe", .exe = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                      .cwd = "C:\\Program Files\\Google\\Chrome\\Application\\",
                      .cmdlines = {"\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" ",
                                   "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer "
                                   "--renderer-client-id={N} --lang=en-US",
                                   "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=utility "
                                   "--utility-sub-type=network.mojom.NetworkService"},
                      .original_file_name = "chrome.exe", .description = "Google Chrome", .company = "Google LLC",
                      .user = USER_HOST, .files = FILES_BROWSER, .net = NET_WEB, .dlls = DLLS_BROWSER,
                      .children = {W_CHROME})},
    [W_MSEDGE] = {WIN(.name = "msedge.exe",
                      .exe = "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
                      .cwd = "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\",
                      .cmdlines = {"\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" "
                                   "--profile-directory=Default",
                                   "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" "
                                   "--type=renderer --renderer-client-id={N}"},
                      .original_file_name = "msedge.exe", .description = "Microsoft Edge", .company = MS,
                      .user = USER_HOST, .files = FILES_BROWSER, .net = NET_WEB, .dlls = DLLS_BROWSER,
                      .children = {W_MSEDGE})},
    [W_OUTLOOK] = {WIN(.name = "OUTLOOK.EXE",
                       .exe = "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
                       .cwd = "C:\\Users\\{U}\\Documents\\",
                       .cmdlines = {"\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\" "},
                       .original_file_name = "Outlook.exe", .description = "Microsoft Outlook", .company = MS,
                       .user = USER_HOST, .files = FILES_TEMP, .net = NET_MAIL, .dlls = DLLS_OFFICE,
                       .registry = true, .children = {W_WINWORD, W_EXCEL})},
    [W_WINWORD] = {WIN(.name = "WINWORD.EXE",
                       .exe = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
                       .cwd = "C:\\Users\\{U}\\Documents\\",
                       .cmdlines = {"\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" /n "
                                    "\"C:\\Users\\{U}\\Documents\\Report-{N}.docx\""},
                       .original_file_name = "WinWord.exe", .description = "Microsoft Word", .company = MS,
                       .user = USER_HOST, .files = FILES_DOCS, .net = NET_MAIL, .dlls = DLLS_OFFICE,
                       .registry = true, .children = {W_SPLWOW64})},
    [W_EXCEL] = {WIN(.name = "EXCEL.EXE", .exe = "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
                     .cwd = "C:\\Users\\{U}\\Documents\\",
                     .cmdlines = {"\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" "
                                  "\"C:\\Users\\{U}\\Documents\\Budget-{N}.xlsx\""},
                     .original_file_name = "Excel.exe", .description = "Microsoft Excel", .company = MS,
                     .user = USER_HOST, .files = FILES_DOCS, .net = NET_MAIL, .dlls = DLLS_OFFICE, .registry = true)},
    [W_TEAMS] = {WIN(.name = "ms-teams.exe",
                     .exe = "C:\\Program Files\\WindowsApps\\MSTeams_24004.1307.2669.7070_x64__8wekyb3d8bbwe\\"
                            "ms-teams.exe",
                     .cwd = "C:\\Users\\{U}\\",
                     .cmdlines = {"\"ms-teams.exe\" --system-initiated", "\"ms-teams.exe\" --type=gpu-process"},
                     .original_file_name = "ms-teams.exe", .description = "Microsoft Teams", .company = MS,
                     .user = USER_HOST, .files = FILES_TEMP, .net = NET_CHAT, .dlls = DLLS_BROWSER,
                     .children = {W_TEAMS})},
    [W_NOTEPAD] = {WIN(.name = "notepad.exe", .exe = SYS32 "notepad.exe", .cwd = "C:\\Users\\{U}\\",
                       .cmdlines = {"\"C:\\Windows\\system32\\NOTEPAD.EXE\" C:\\Users\\{U}\\Desktop\\notes-{N}.txt"},
                       .original_file_name = "NOTEPAD.EXE", .description = "Notepad", .company = MS,
                       .user = USER_HOST, .files = FILES_DOCS, .dlls = DLLS_BASE)},
    [W_CODE] = {WIN(.name = "Code.exe", .exe = "C:\\Users\\{U}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe",
                    .cwd = "C:\\Users\\{U}\\src\\",
                    .cmdlines = {"\"C:\\Users\\{U}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe\" ",
                                 "\"C:\\Users\\{U}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe\" "
                                 "--type=utility --utility-sub-type=node.mojom.NodeService"},
                    .original_file_name = "electron.exe", .description = "Visual Studio Code", .company = MS,
                    .user = USER_HOST, .files = FILES_DOCS, .net = NET_DEV, .dlls = DLLS_BROWSER,
                    .children = {W_CODE, W_GIT, W_POWERSHELL, W_CMD})},
    [W_GIT] = {WIN(.name = "git.exe", .exe = "C:\\Program Files\\Git\\cmd\\git.exe", .cwd = "C:\\Users\\{U}\\src\\",
                   .cmdlines = {"git.exe fetch --all", "git.exe status -z -uall", "git.exe pull --ff-only",
                                "git.exe log -n 20 --format=%H"},
                   .original_file_name = "git.exe", .description = "Git for Windows",
                   .company = "The Git Development Community", .user = USER_HOST, .files = FILES_DOCS,
                   .net = NET_DEV, .dlls = DLLS_BASE)},
    [W_WHOAMI] = {WIN(.name = "whoami.exe", .exe = SYS32 "whoami.exe", .cwd = "C:\\Users\\{U}\\",
                      .cmdlines = {"whoami", "whoami /groups", "whoami /priv"}, .original_file_name = "whoami.exe",
                      .description = "whoami - displays logged on user information", .company = MS,
                      .user = USER_HOST, .files = FILES_TEMP, .dlls = DLLS_BASE)},
    [W_IPCONFIG] = {WIN(.name = "ipconfig.exe", .exe = SYS32 "ipconfig.exe", .cwd = "C:\\Users\\{U}\\",
                        .cmdlines = {"ipconfig /all", "ipconfig /flushdns", "ipconfig"},
                        .original_file_name = "ipconfig.exe", .description = "IP Configuration Utility",
                        .company = MS, .user = USER_HOST, .files = FILES_TEMP, .dlls = DLLS_BASE)},
    [W_NET] = {WIN(.name = "net.exe", .exe = SYS32 "net.exe", .cwd = "C:\\Users\\{U}\\",
                   .cmdlines = {"net use", "net view \\\\fileserver01", "net time \\\\dc01"},
                   .original_file_name = "net.exe", .description = "Net Command", .company = MS, .user = USER_HOST,
                   .files = FILES_TEMP, .net = NET_DC, .dlls = DLLS_BASE)},
    [W_PING] = {WIN(.name = "PING.EXE", .exe = SYS32 "PING.EXE", .cwd = "C:\\Users\\{U}\\",
                    .cmdlines = {"ping -n 4 fileserver01", "ping 8.8.8.8"}, .original_file_name = "ping.exe",
                    .description = "TCP/IP Ping Command", .company = MS, .user = USER_HOST, .files = FILES_TEMP,
                    .dlls = DLLS_BASE)},
    [W_FINDSTR] = {WIN(.name = "findstr.exe", .exe = SYS32 "findstr.exe", .cwd = "C:\\Users\\{U}\\",
                       .cmdlines = {"findstr /i error C:\\Users\\{U}\\logs\\app-{N}.log"},
                       .original_file_name = "FINDSTR.EXE", .description = "Find String (QGREP) Utility",
                       .company = MS, .user = USER_HOST, .files = FILES_TEMP, .dlls = DLLS_BASE)},
    [W_TASKHOSTW] = {WIN(.name = "taskhostw.exe", .exe = SYS32 "taskhostw.exe", .cwd = "C:\\Windows\\system32\\",
                         .cmdlines = {"taskhostw.exe {222A245B-E637-4AE9-A93F-A59CA119A75E}", "taskhostw.exe"},
                         .original_file_name = "taskhostw.exe", .description = "Host Process for Windows Tasks",
                         .company = MS, .user = USER_HOST, .files = FILES_SYSTEM, .dlls = DLLS_BASE,
                         .registry = true)},
    [W_WMIPRVSE] = {WIN(.name = "WmiPrvSE.exe", .exe = SYS32 "wbem\\WmiPrvSE.exe", .cwd = "C:\\Windows\\system32\\",
                        .cmdlines = {"C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                                     "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding"},
                        .original_file_name = "Wmiprvse.exe", .description = "WMI Provider Host", .company = MS,
                        .user = USER_NETWORK_SERVICE, .integrity = 2, .files = FILES_SYSTEM, .dlls = DLLS_BASE)},
    [W_BGTASKHOST] = {WIN(.name = "backgroundTaskHost.exe", .exe = SYS32 "backgroundTaskHost.exe",
                          .cwd = "C:\\Windows\\system32\\",
                          .cmdlines = {"\"C:\\Windows\\system32\\backgroundTaskHost.exe\" "
                                       "-ServerName:BackgroundTaskHost.WebAccountProvider"},
                          .original_file_name = "backgroundTaskHost.exe", .description = "Background Task Host",
                          .company = MS, .user = USER_HOST, .files = FILES_TEMP, .net = NET_WINDOWS,
                          .dlls = DLLS_BASE)},
    [W_RUNTIMEBROKER] = {WIN(.name = "RuntimeBroker.exe", .exe = SYS32 "RuntimeBroker.exe",
                             .cwd = "C:\\Windows\\system32\\",
                             .cmdlines = {"C:\\Windows\\System32\\RuntimeBroker.exe -Embedding"},
                             .original_file_name = "RuntimeBroker.exe", .description = "Runtime Broker",
                             .company = MS, .user = USER_HOST, .files = FILES_TEMP, .dlls = DLLS_BASE,
                             .registry = true)},
    [W_MSIEXEC] = {WIN(.name = "msiexec.exe", .exe = SYS32 "msiexec.exe", .cwd = "C:\\Windows\\system32\\",
                       .cmdlines = {"C:\\Windows\\system32\\msiexec.exe /V"}, .original_file_name = "msiexec.exe",
                       .description = "Windows installer", .company = MS, .user = USER_SYSTEM, .integrity = 2,
                       .files = FILES_SYSTEM, .net = NET_WINDOWS, .dlls = DLLS_BASE, .registry = true)},
    [W_SPLWOW64] = {WIN(.name = "splwow64.exe", .exe = "C:\\Windows\\splwow64.exe", .cwd = "C:\\Windows\\",
                        .cmdlines = {"C:\\Windows\\splwow64.exe 8192"}, .original_file_name = "splwow64.exe",
                        .description = "Print driver host for applications", .company = MS, .user = USER_HOST,
                        .files = FILES_TEMP, .dlls = DLLS_BASE)},
    [W_ONEDRIVE] = {WIN(.name = "OneDrive.exe", .exe = "C:\\Users\\{U}\\AppData\\Local\\Microsoft\\OneDrive\\"
                                                       "OneDrive.exe",
                        .cwd = "C:\\Users\\{U}\\",
                        .cmdlines = {"\"C:\\Users\\{U}\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe\" "
                                     "/background"},
                        .original_file_name = "OneDrive.exe", .description = "Microsoft OneDrive", .company = MS,
                        .user = USER_HOST, .files = FILES_DOCS, .net = NET_MAIL, .dlls = DLLS_BASE,
                        .registry = true)},
    [W_SEARCHINDEXER] = {WIN(.name = "SearchIndexer.exe", .exe = SYS32 "SearchIndexer.exe",
                             .cwd = "C:\\Windows\\system32\\",
                             .cmdlines = {"C:\\Windows\\system32\\SearchIndexer.exe /Embedding"},
                             .original_file_name = "SearchIndexer.exe", .description = "Microsoft Windows Search "
                                                                                       "Indexer",
                             .company = MS, .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM,
                             .dlls = DLLS_BASE, .registry = true, .children = {W_SEARCHPROTOCOLHOST})},
    [W_SEARCHPROTOCOLHOST] = {WIN(.name = "SearchProtocolHost.exe", .exe = SYS32 "SearchProtocolHost.exe",
                                  .cwd = "C:\\Windows\\system32\\",
                                  .cmdlines = {"\"C:\\Windows\\system32\\SearchProtocolHost.exe\" "
                                               "Global\\UsGthrFltPipeMssGthrPipe{N}"},
                                  .original_file_name = "SearchProtocolHost.exe",
                                  .description = "Microsoft Windows Search Protocol Host", .company = MS,
                                  .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM, .dlls = DLLS_BASE)},
    [W_MPCMDRUN] = {WIN(.name = "MpCmdRun.exe", .exe = "C:\\Program Files\\Windows Defender\\MpCmdRun.exe",
                        .cwd = "C:\\Windows\\system32\\",
                        .cmdlines = {"\"C:\\Program Files\\Windows Defender\\mpcmdrun.exe\" -wdenable",
                                     "\"C:\\Program Files\\Windows Defender\\MpCmdRun.exe\" SignatureUpdate "
                                     "-ScheduleJob -RestrictPrivileges"},
                        .original_file_name = "MpCmdRun.exe", .description = "Microsoft Malware Protection "
                                                                             "Command Line Utility",
                        .company = MS, .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM,
                        .net = NET_WINDOWS, .dlls = DLLS_BASE, .registry = true)},
    [W_SCHTASKS] = {WIN(.name = "schtasks.exe", .exe = SYS32 "schtasks.exe", .cwd = "C:\\Windows\\system32\\",
                        .cmdlines = {"schtasks.exe /query /fo csv", "schtasks /run /tn \"\\Microsoft\\Windows\\"
                                                                    "Defrag\\ScheduledDefrag\""},
                        .original_file_name = "schtasks.exe", .description = "Task Scheduler Configuration Tool",
                        .company = MS, .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM,
                        .dlls = DLLS_BASE, .registry = true)},
    [W_RUNDLL32] = {WIN(.name = "rundll32.exe", .exe = SYS32 "rundll32.exe", .cwd = "C:\\Windows\\system32\\",
                        .cmdlines = {"C:\\Windows\\system32\\rundll32.exe "
                                     "C:\\Windows\\system32\\PcaSvc.dll,PcaPatchSdbTask",
                                     "rundll32.exe shell32.dll,Control_RunDLL"},
                        .original_file_name = "RUNDLL32.EXE", .description = "Windows host process (Rundll32)",
                        .company = MS, .user = USER_SYSTEM, .integrity = 2, .files = FILES_SYSTEM,
                        .dlls = DLLS_BASE, .registry = true)},

    [L_SYSTEMD] = {LIN(.name = "systemd", .exe = "/usr/lib/systemd/systemd", .cwd = "/",
                       .cmdlines = {"/sbin/init splash"}, .user = USER_ROOT, .files = FILES_LINUX_SYSTEM,
                       .dlls = DLLS_LINUX, .children = {L_LOGROTATE, L_SH})},
    [L_SSHD] = {LIN(.name = "sshd", .exe = "/usr/sbin/sshd", .cwd = "/",
                    .cmdlines = {"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
                                 "sshd: {U} [priv]"},
                    .user = USER_ROOT, .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX, .children = {L_BASH})},
    [L_CRON] = {LIN(.name = "cron", .exe = "/usr/sbin/cron", .cwd = "/var/spool/cron", .cmdlines = {"/usr/sbin/cron -f -P"},
                    .user = USER_ROOT, .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX, .children = {L_SH})},
    [L_DOCKERD] = {LIN(.name = "dockerd", .exe = "/usr/bin/dockerd", .cwd = "/",
                       .cmdlines = {"/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"},
                       .user = USER_ROOT, .files = FILES_LINUX_SYSTEM, .net = NET_LINUX, .dlls = DLLS_LINUX,
                       .children = {L_CONTAINERD_SHIM})},
    [L_BASH] = {LIN(.name = "bash", .exe = "/usr/bin/bash", .cwd = "/home/{U}", .cmdlines = {"-bash", "bash"},
                    .user = USER_HOST, .files = FILES_LINUX_HOME, .dlls = DLLS_LINUX,
                    .children = {L_LS, L_PS, L_CURL, L_PYTHON3, L_GIT, L_VIM, L_GREP, L_SUDO, L_SSH, L_TAR})},
    [L_SH] = {LIN(.name = "sh", .exe = "/usr/bin/dash", .cwd = "/",
                  .cmdlines = {"/bin/sh -c test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily",
                               "/bin/sh -c /usr/local/bin/backup.sh >> /var/log/backup.log 2>&1"},
                  .user = USER_ROOT, .files = FILES_LINUX_TMP, .dlls = DLLS_LINUX,
                  .children = {L_LOGROTATE, L_TAR, L_CURL})},
    [L_LS] = {LIN(.name = "ls", .exe = "/usr/bin/ls", .cwd = "/home/{U}", .cmdlines = {"ls -la", "ls --color=auto"},
                  .user = USER_HOST, .files = FILES_LINUX_HOME, .dlls = DLLS_LINUX)},
    [L_PS] = {LIN(.name = "ps", .exe = "/usr/bin/ps", .cwd = "/home/{U}", .cmdlines = {"ps aux", "ps -ef"},
                  .user = USER_HOST, .files = FILES_LINUX_HOME, .dlls = DLLS_LINUX)},
    [L_CURL] = {LIN(.name = "curl", .exe = "/usr/bin/curl", .cwd = "/home/{U}",
                    .cmdlines = {"curl -fsSL https://api.github.com/repos/{U}/tools/releases",
                                 "curl -s http://169.254.169.254/latest/meta-data/"},
                    .user = USER_HOST, .files = FILES_LINUX_TMP, .net = NET_DEV, .dlls = DLLS_LINUX)},
    [L_PYTHON3] = {LIN(.name = "python3", .exe = "/usr/bin/python3.11", .cwd = "/home/{U}/project",
                       .cmdlines = {"python3 manage.py runserver", "python3 -m pip install -r requirements.txt",
                                    "python3 scripts/report_{N}.py"},
                       .user = USER_HOST, .files = FILES_LINUX_HOME, .net = NET_DEV, .dlls = DLLS_LINUX,
                       .children = {L_SH})},
    [L_GIT] = {LIN(.name = "git", .exe = "/usr/bin/git", .cwd = "/home/{U}/project",
                   .cmdlines = {"git pull", "git status", "git fetch origin"}, .user = USER_HOST,
                   .files = FILES_LINUX_HOME, .net = NET_DEV, .dlls = DLLS_LINUX)},
    [L_VIM] = {LIN(.name = "vim", .exe = "/usr/bin/vim.basic", .cwd = "/home/{U}/project",
                   .cmdlines = {"vim app/settings.py", "vim /etc/hosts"}, .user = USER_HOST, .files = FILES_LINUX_HOME,
                   .dlls = DLLS_LINUX)},
    [L_GREP] = {LIN(.name = "grep", .exe = "/usr/bin/grep", .cwd = "/home/{U}",
                    .cmdlines = {"grep -r TODO .", "grep -i error /var/log/syslog"}, .user = USER_HOST,
                    .files = FILES_LINUX_HOME, .dlls = DLLS_LINUX)},
    [L_SUDO] = {LIN(.name = "sudo", .exe = "/usr/bin/sudo", .cwd = "/home/{U}",
                    .cmdlines = {"sudo apt update", "sudo systemctl restart nginx"}, .user = USER_ROOT,
                    .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX, .children = {L_APT, L_SYSTEMCTL})},
    [L_APT] = {LIN(.name = "apt", .exe = "/usr/bin/apt", .cwd = "/", .cmdlines = {"apt update", "apt list --upgradable"},
                   .user = USER_ROOT, .files = FILES_LINUX_SYSTEM, .net = NET_LINUX, .dlls = DLLS_LINUX)},
    [L_SYSTEMCTL] = {LIN(.name = "systemctl", .exe = "/usr/bin/systemctl", .cwd = "/",
                         .cmdlines = {"systemctl restart nginx", "systemctl status docker"}, .user = USER_ROOT,
                         .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX)},
    [L_SSH] = {LIN(.name = "ssh", .exe = "/usr/bin/ssh", .cwd = "/home/{U}",
                   .cmdlines = {"ssh build01.corp.example", "ssh -T git@github.com"}, .user = USER_HOST,
                   .files = FILES_LINUX_HOME, .net = NET_DEV, .dlls = DLLS_LINUX)},
    [L_TAR] = {LIN(.name = "tar", .exe = "/usr/bin/tar", .cwd = "/home/{U}",
                   .cmdlines = {"tar czf /tmp/backup-{N}.tar.gz /home/{U}/project"}, .user = USER_HOST,
                   .files = FILES_LINUX_TMP, .dlls = DLLS_LINUX)},
    [L_LOGROTATE] = {LIN(.name = "logrotate", .exe = "/usr/sbin/logrotate", .cwd = "/",
                         .cmdlines = {"/usr/sbin/logrotate /etc/logrotate.conf"}, .user = USER_ROOT,
                         .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX)},
    [L_CONTAINERD_SHIM] = {LIN(.name = "containerd-shim-runc-v2", .exe = "/usr/bin/containerd-shim-runc-v2",
                               .cwd = "/run/containerd/io.containerd.runtime.v2.task/moby/{H}",
                               .cmdlines = {"/usr/bin/containerd-shim-runc-v2 -namespace moby -id {H}{H} -address "
                                            "/run/containerd/containerd.sock"},
                               .user = USER_ROOT, .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX,
                               .children = {L_NGINX})},
    [L_NGINX] = {LIN(.name = "nginx", .exe = "/usr/sbin/nginx", .cwd = "/",
                     .cmdlines = {"nginx: master process nginx -g daemon off;", "nginx: worker process"},
                     .user = USER_ROOT, .files = FILES_LINUX_SYSTEM, .net = NET_LINUX, .dlls = DLLS_LINUX,
                     .children = {L_NGINX})},
    [L_JOURNALD] = {LIN(.name = "systemd-journald", .exe = "/usr/lib/systemd/systemd-journald", .cwd = "/",
                        .cmdlines = {"/lib/systemd/systemd-journald"}, .user = USER_ROOT,
                        .files = FILES_LINUX_SYSTEM, .dlls = DLLS_LINUX)},
};
const uint32_t model_template_count = TEMPLATE_COUNT;

/* {template, index of its parent in this list or NO_PARENT}: the parents of wininit.exe
 * and explorer.exe (smss.exe, userinit.exe) have exited long ago on a real host. */
#define NO_PARENT 255
const uint8_t model_windows_base[][2] = {{W_SYSTEM, NO_PARENT}, {W_WININIT, NO_PARENT}, {W_SERVICES, 1},
                                         {W_LSASS, 1},          {W_SVCHOST, 2},          {W_SVCHOST, 2},
                                         {W_EXPLORER, NO_PARENT}, {T_NONE, 0}};
const uint8_t model_linux_base[][2] = {{L_SYSTEMD, NO_PARENT}, {L_SSHD, 0}, {L_CRON, 0}, {L_DOCKERD, 0}, {L_BASH, 1},
                                       {T_NONE, 0}};

const net_dest model_net_dests[] = {
    {"www.google.com", "142.250.74.36", 443, false, "https", NET_WEB},
    {"fonts.gstatic.com", "142.250.74.67", 443, false, "https", NET_WEB},
    {"www.wikipedia.org", "185.15.59.224", 443, false, "https", NET_WEB},
    {"cdn.jsdelivr.net", "151.101.1.229", 443, false, "https", NET_WEB},
    {"news.ycombinator.com", "209.216.230.207", 443, false, "https", NET_WEB},
    {"outlook.office365.com", "52.97.146.162", 443, false, "https", NET_MAIL},
    {"login.microsoftonline.com", "20.190.160.20", 443, false, "https", NET_MAIL},
    {"corp-my.sharepoint.com", "13.107.136.9", 443, false, "https", NET_MAIL},
    {"teams.microsoft.com", "52.113.194.132", 443, false, "https", NET_CHAT},
    {"statics.teams.cdn.office.net", "13.107.246.40", 443, false, "https", NET_CHAT},
    {"settings-win.data.microsoft.com", "20.42.73.29", 443, false, "https", NET_WINDOWS},
    {"ctldl.windowsupdate.com", "93.184.221.240", 80, false, "http", NET_WINDOWS},
    {"time.windows.com", "168.61.215.74", 123, true, "ntp", NET_WINDOWS},
    {"wdcp.microsoft.com", "20.10.31.115", 443, false, "https", NET_WINDOWS},
    {"dc01.corp.example", "10.0.0.10", 389, false, "ldap", NET_DC},
    {"dc01.corp.example", "10.0.0.10", 88, false, "kerberos", NET_DC},
    {"dc01.corp.example", "10.0.0.10", 445, false, "smb", NET_DC},
    {"fileserver01.corp.example", "10.0.0.20", 445, false, "smb", NET_DC},
    {"github.com", "140.82.121.4", 443, false, "https", NET_DEV},
    {"api.github.com", "140.82.121.6", 443, false, "https", NET_DEV},
    {"pypi.org", "151.101.0.223", 443, false, "https", NET_DEV},
    {"registry.npmjs.org", "104.16.24.35", 443, false, "https", NET_DEV},
    {"build01.corp.example", "10.0.4.21", 22, false, "ssh", NET_DEV},
    {"archive.ubuntu.com", "91.189.91.82", 80, false, "http", NET_LINUX},
    {"security.ubuntu.com", "185.125.190.39", 80, false, "http", NET_LINUX},
    {"registry-1.docker.io", "54.227.20.253", 443, false, "https", NET_LINUX},
    {"production.cloudflare.docker.com", "104.16.99.215", 443, false, "https", NET_LINUX},
};
const uint32_t model_net_dest_count = MAMORI_ARRAY_LEN(model_net_dests);

#define CHOICES(name, ...)                                   \
    static text_choice name[] = {__VA_ARGS__};

CHOICES(files_temp, {.text = "C:\\Users\\{U}\\AppData\\Local\\Temp\\tmp{H}.tmp"},
        {.text = "C:\\Users\\{U}\\AppData\\Local\\Temp\\{R}.log"},
        {.text = "C:\\Users\\{U}\\AppData\\Local\\Temp\\__PSScriptPolicyTest_{R}.ps1"},
        {.text = "C:\\Users\\{U}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\IE\\{R}\\{R}.htm"})
CHOICES(files_docs, {.text = "C:\\Users\\{U}\\Documents\\Report-{N}.docx"}, {.text = "C:\\Users\\{U}\\Documents\\~$port-{N}.docx"},
        {.text = "C:\\Users\\{U}\\Desktop\\notes-{N}.txt"}, {.text = "C:\\Users\\{U}\\Downloads\\invoice_{N}.pdf"},
        {.text = "C:\\Users\\{U}\\OneDrive - Corp\\Projects\\plan-{N}.xlsx"},
        {.text = "C:\\Users\\{U}\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\Report-{N}.lnk"})
CHOICES(files_browser, {.text = "C:\\Users\\{U}\\AppData\\Local\\Google\\Chrome\\User Data\\Default\\Cache\\Cache_Data\\f_{H}"},
        {.text = "C:\\Users\\{U}\\AppData\\Local\\Google\\Chrome\\User Data\\Default\\Network\\Cookies-journal"},
        {.text = "C:\\Users\\{U}\\Downloads\\{R}.crdownload"},
        {.text = "C:\\Users\\{U}\\AppData\\Local\\Microsoft\\Edge\\User Data\\Default\\Cache\\Cache_Data\\f_{H}"})
CHOICES(files_system, {.text = "C:\\Windows\\Temp\\{R}.tmp"}, {.text = "C:\\Windows\\Prefetch\\{R}-{H}.pf"},
        {.text = "C:\\Windows\\ServiceState\\EventLog\\Data\\lastalive{N}.dat"},
        {.text = "C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\History\\Service\\DetectionHistory\\{R}"},
        {.text = "C:\\Windows\\System32\\Tasks\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan"},
        {.text = "C:\\ProgramData\\Microsoft\\Windows\\WER\\Temp\\WER{H}.tmp.xml"})
CHOICES(files_linux_tmp, {.text = "/tmp/tmp.{R}"}, {.text = "/tmp/backup-{N}.tar.gz"}, {.text = "/var/tmp/systemd-private-{H}/tmp/{R}"},
        {.text = "/tmp/pip-install-{R}/setup.py"})
CHOICES(files_linux_home, {.text = "/home/{U}/.bash_history"}, {.text = "/home/{U}/project/app/{R}.py"},
        {.text = "/home/{U}/.cache/pip/http/{H}/{R}"}, {.text = "/home/{U}/project/.git/objects/{H}/{R}{R}"},
        {.text = "/home/{U}/.viminfo"}, {.text = "/home/{U}/Downloads/report-{N}.csv"})
CHOICES(files_linux_system, {.text = "/var/log/nginx/access.log.{N}"}, {.text = "/var/lib/apt/lists/partial/{R}_InRelease"},
        {.text = "/var/lib/docker/overlay2/{H}{H}/diff/tmp/{R}"}, {.text = "/etc/cron.daily/{R}"}, {.text = "/run/user/1000/{R}.sock"})

text_choice *model_file_paths[FILE_PROFILES] = {files_temp, files_docs, files_browser, files_system, files_linux_tmp,
                                               files_linux_home, files_linux_system};
uint32_t model_file_path_counts[FILE_PROFILES] = {
    MAMORI_ARRAY_LEN(files_temp),      MAMORI_ARRAY_LEN(files_docs),       MAMORI_ARRAY_LEN(files_browser),
    MAMORI_ARRAY_LEN(files_system),    MAMORI_ARRAY_LEN(files_linux_tmp),  MAMORI_ARRAY_LEN(files_linux_home),
    MAMORI_ARRAY_LEN(files_linux_system)};

CHOICES(dlls_base, {.text = SYS32 "ntdll.dll"}, {.text = SYS32 "kernel32.dll"}, {.text = SYS32 "KernelBase.dll"}, {.text = SYS32 "advapi32.dll"},
        {.text = SYS32 "ws2_32.dll"}, {.text = SYS32 "crypt32.dll"}, {.text = SYS32 "bcrypt.dll"}, {.text = SYS32 "sechost.dll"},
        {.text = SYS32 "wintrust.dll"}, {.text = SYS32 "ntmarta.dll"})
CHOICES(dlls_script, {.text = SYS32 "amsi.dll"}, {.text = "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\clr.dll"},
        {.text = "C:\\Windows\\assembly\\NativeImages_v4.0.30319_64\\System.Management.Automation\\{H}\\"
         "System.Management.Automation.ni.dll"},
        {.text = "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\clrjit.dll"}, {.text = SYS32 "wldp.dll"})
CHOICES(dlls_browser, {.text = "C:\\Program Files\\Google\\Chrome\\Application\\120.0.6099.130\\chrome_elf.dll"},
        {.text = SYS32 "d3d11.dll"}, {.text = SYS32 "dxgi.dll"}, {.text = SYS32 "winhttp.dll"}, {.text = SYS32 "dwrite.dll"})
CHOICES(dlls_office, {.text = "C:\\Program Files\\Microsoft Office\\root\\VFS\\ProgramFilesCommonX64\\Microsoft Shared\\"
                      "Office16\\mso.dll"},
        {.text = "C:\\Program Files\\Microsoft Office\\root\\Office16\\wwlib.dll"}, {.text = SYS32 "vbe7.dll"},
        {.text = SYS32 "msxml6.dll"})
CHOICES(dlls_linux, {.text = "/usr/lib/x86_64-linux-gnu/libc.so.6"}, {.text = "/usr/lib/x86_64-linux-gnu/libssl.so.3"},
        {.text = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"}, {.text = "/usr/lib/x86_64-linux-gnu/libz.so.1"},
        {.text = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"}, {.text = "/usr/lib/x86_64-linux-gnu/libsystemd.so.0"})

text_choice *model_dlls[DLL_PROFILES] = {dlls_base, dlls_script, dlls_browser, dlls_office, dlls_linux};
uint32_t model_dll_counts[DLL_PROFILES] = {MAMORI_ARRAY_LEN(dlls_base), MAMORI_ARRAY_LEN(dlls_script),
                                           MAMORI_ARRAY_LEN(dlls_browser), MAMORI_ARRAY_LEN(dlls_office),
                                           MAMORI_ARRAY_LEN(dlls_linux)};

text_choice model_registry[] = {
#define REG(path, details) {.text = path, .data = details}
    REG("HKU\\{S}\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\RecentDocs\\.docx\\{N}", "Binary Data"),
    REG("HKU\\{S}\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\UserAssist\\"
     "{CEBFF5CD-ACE2-4F4F-9178-9926F41749EA}\\Count\\{R}", "Binary Data"),
    REG("HKLM\\System\\CurrentControlSet\\Services\\{R}\\Start", "DWORD (0x00000003)"),
    REG("HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\SignaturesLastUpdated", "QWORD (0x01da{H}-0x{H}00)"),
    REG("HKU\\{S}\\Software\\Microsoft\\Office\\16.0\\Word\\Reading Locations\\Document {N}\\Position", "0 0"),
    REG("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tree\\{R}\\Index", "DWORD (0x00000003)"),
    REG("HKU\\{S}\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap\\ProxyBypass", "DWORD (0x00000001)"),
    REG("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\LastOnlineScanTimeForAppCategory\\"
     "{R}", "QWORD (0x01da{H}-0x{H}00)"),
};
#undef REG
const uint32_t model_registry_count = MAMORI_ARRAY_LEN(model_registry);

/* ---- escaping, once ---- */

static const char *escape(const char *raw)
{
    if (!raw) return NULL;
    buf b;
    buf_init(&b);
    json_write_string(&b, raw, strlen(raw));
    /* Drop the quotes json_write_string adds. */
    char *s = mamori_xstrndup(b.data + 1, b.len - 2);
    buf_fini(&b);
    return s;
}

static void escape_choices(text_choice *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        c[i].text_json = escape(c[i].text);
        c[i].data_json = escape(c[i].data);
        sha256_hex_of(c[i].text, c[i].sha256);
    }
}

void sha256_hex_of(const char *exe, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(exe);
    for (unsigned part = 0; part < 4; part++) {
        uint64_t h = mamori_hash64(exe, n) ^ (0x9E3779B97F4A7C15ULL * (part + 1u));
        h = mamori_hash64(&h, sizeof h);
        for (unsigned i = 0; i < 16; i++) out[part * 16 + i] = hex[(h >> (60 - 4 * i)) & 15];
    }
    out[64] = '\0';
}

static void init_once(void)
{
    for (uint32_t i = 1; i < TEMPLATE_COUNT; i++) {
        proc_template *t = &model_templates[i];
        MAMORI_ASSERT(t->name && t->exe && t->cwd && t->cmdlines[0]);
        t->name_json = escape(t->name);
        t->exe_json = escape(t->exe);
        t->cwd_json = escape(t->cwd);
        t->original_file_name_json = escape(t->original_file_name ? t->original_file_name : t->name);
        t->description_json = escape(t->description ? t->description : t->name);
        t->company_json = escape(t->company ? t->company : "-");
        for (uint8_t c = 0; c < TEMPLATE_CMDLINES_MAX && t->cmdlines[c]; c++) {
            t->cmdlines_json[c] = escape(t->cmdlines[c]);
            t->cmdline_count = (uint8_t)(c + 1);
        }
        sha256_hex_of(t->exe, t->sha256);
    }
    for (uint32_t p = 0; p < FILE_PROFILES; p++) escape_choices(model_file_paths[p], model_file_path_counts[p]);
    for (uint32_t p = 0; p < DLL_PROFILES; p++) escape_choices(model_dlls[p], model_dll_counts[p]);
    escape_choices(model_registry, model_registry_count);
}

void tables_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
}
