#include "ep/cli.h"

#include <unistd.h>

#include <iostream>

#include "ep/log.h"

namespace ep {

bool CommonOptions::progress() const {
  if (progress_off) return false;
  if (progress_on) return true;
  return ::isatty(2) == 1;
}

Cli::Cli(std::string tool, std::string summary, std::string io, std::string example)
    : tool_(std::move(tool)), app_(summary + "\n\n" + io, tool_) {
  app_.set_help_flag("-h,--help", "Show this help and exit");
  app_.set_version_flag("--version", tool_ + " (EdgePulse) " EP_VERSION);
  app_.option_defaults()->always_capture_default();
  app_.footer("Example:\n  " + example +
              "\n\nOptions not given on the command line are read from the environment "
              "(where shown),\nthen from the config file ([" +
              tool_.substr(tool_.rfind('-') + 1) +
              "] table, then top level), then defaults.\nSee man " + tool_ + "(1).");
  const char* kCommon = "Common options";
  app_.add_option("--config", common_.config_path,
                  "TOML config file (default $EDGEPULSE_CONFIG, then /etc/edgepulse/edgepulse.toml)")
      ->group(kCommon);
  app_.add_option("--log-format", common_.log_format, "Diagnostics on stderr: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->group(kCommon);
  app_.add_flag("--progress", common_.progress_on, "Show progress on stderr")->group(kCommon);
  app_.add_flag("--no-progress", common_.progress_off, "Never show progress")->group(kCommon);
  app_.add_flag("--strict", common_.strict, "Stop at the first rejected input record")
      ->group(kCommon);
  log::set_tool(tool_);
}

void Cli::add_inputs(CLI::App* sub) {
  (sub ? sub : &app_)
      ->add_option("files", common_.inputs, "Input files, read in order; none or - means stdin")
      ->type_name("FILE...");
}

CLI::Option* Cli::add_allow_egress(std::vector<std::string>& cidrs) {
  return app_
      .add_option("--allow-egress", cidrs,
                  "Allow connections to this CIDR although it is loopback, private, link-local "
                  "or otherwise non-public (on-premises webhook receivers); repeatable")
      ->type_name("CIDR")
      ->delimiter(',')
      ->allow_extra_args(false)  // one value per flag; FILEs stay positional
      ->envname("EP_ALLOW_EGRESS");
}

int Cli::usage_error(const std::string& msg) const {
  log::write_stderr(tool_ + ": " + msg + "\nRun '" + tool_ + " --help' for usage.\n");
  return 64;
}

void Cli::apply_config(CLI::App& app, const std::string& section) {
  for (CLI::Option* opt : app.get_options()) {
    if (opt->count() > 0 || opt->get_lnames().empty()) continue;
    const std::string& name = opt->get_lnames().front();
    if (name == "help" || name == "version" || name == "config") continue;
    auto values = config_.lookup(section, name);
    if (values.empty()) continue;
    for (auto& v : values) opt->add_result(v);
    opt->run_callback();
  }
  for (CLI::App* sub : app.get_subcommands()) apply_config(*sub, section);
}

std::optional<int> Cli::parse(int argc, const char* const* argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app_.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app_.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << '\n';
    return 0;
  } catch (const CLI::RequiredError& e) {
    // CLI11 checks requirements (a sub-command, a required option) before it complains
    // about arguments it does not know; a mistyped option is the likelier cause.
    std::vector<std::string> extra = app_.remaining(true);
    if (extra.empty()) return usage_error(e.what());
    const std::string& a = extra.front();
    return usage_error((a.size() > 1 && a[0] == '-' ? "unknown option '" : "unexpected argument '") +
                       a + "'");
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  log::set_format(common_.log_format == "json" ? log::Format::kJson : log::Format::kText);
  auto cfg = Config::load(common_.config_path);
  if (!cfg) return usage_error(cfg.status().message());
  config_ = std::move(cfg).value();
  try {
    apply_config(app_, tool_.substr(tool_.rfind('-') + 1));
  } catch (const CLI::ParseError& e) {
    return usage_error(config_.source() + ": " + e.what());
  }
  log::set_format(common_.log_format == "json" ? log::Format::kJson : log::Format::kText);
  return std::nullopt;
}

}  // namespace ep
