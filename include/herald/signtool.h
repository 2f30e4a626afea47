/*
 * `herald sign` and `herald verify`: the signing code of sign.c on the
 * command line, for people debugging a receiver (design.md, "Surface").
 *
 * Both take argv[0] as the subcommand name, read the body from stdin
 * byte for byte (up to 16 MiB) and return the process exit status.
 */
#ifndef HERALD_SIGNTOOL_H
#define HERALD_SIGNTOOL_H

/* Prints the headers herald would send, one "Name: value" a line: 0, or 2 on bad usage. */
int signtool_sign(int argc, char **argv);

/* Checks a request's headers against the body: 0 valid, 1 invalid, 2 bad usage. */
int signtool_verify(int argc, char **argv);

#endif
