// The `fusekit` command-line tool. Subcommands register themselves from tools/commands/*.cpp (see
// tools/CMakeLists.txt); this file only parses and turns failures into one-line errors and exit codes:
//   0 success, 1 a fusekit::error or other failure (one line on stderr), 2 bad command line.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>

#include <fusekit/core/error.hpp>

namespace fusekit_tool {
void register_all(CLI::App& app);
}

int main(int argc, char** argv) {
  CLI::App app{"fusekit: knowledge fusion of LLMs (merging, preference data, tools)", "fusekit"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fusekit 0.1.0");
  fusekit_tool::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const fusekit::error& e) {
    std::string m = e.what();
    for (char& c : m)
      if (c == '\n')
        c = ' ';
    std::cerr << "fusekit: error: " << m << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "fusekit: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
