// cairn: the command-line tool over a file_journal data folder. It knows no aggregate
// types; applications build their own tool with cairn::cli::run (cairn/cli_tool.hpp).
#include <cairn/cli_tool.hpp>

int main(int argc, char** argv) { return cairn::cli::run(argc, argv); }
