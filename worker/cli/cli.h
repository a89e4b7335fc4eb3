/* cli.h: the `catwire` operator tool's subcommands, one file each (cmd_*.c).
 * Each takes argv as main() would (argv[0] is the subcommand name) and
 * returns the process exit code: 0 ok, 1 error, 2 usage. Every subcommand
 * answers --help on stdout with exit 0. */
#ifndef CW_CLI_H
#define CW_CLI_H

#define CW_EXIT_OK 0
#define CW_EXIT_ERROR 1
#define CW_EXIT_USAGE 2

int cw_cmd_tokenize(int argc, char **argv);
int cw_cmd_predict(int argc, char **argv);
int cw_cmd_evaluate(int argc, char **argv);
int cw_cmd_publish(int argc, char **argv);
int cw_cmd_tail(int argc, char **argv);
int cw_cmd_models(int argc, char **argv);
int cw_cmd_demo(int argc, char **argv);

#endif
