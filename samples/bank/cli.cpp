// This sample shows an application's own cairn tool: every stock subcommand, plus
// `state`, which rebuilds an account as of a version or a time:
//
//   bank_cli state account-42 --version 3 --data DIR
#include <cairn/cli_tool.hpp>

#include "account.hpp"

int main(int argc, char** argv) {
  cairn::cli::registry types;
  types.add_aggregate<bank::account>();
  return cairn::cli::run(argc, argv, types);
}
