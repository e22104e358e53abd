package hostdl

import (
	"log/slog"
	"os"
	"strings"
)

// EnvLog names the environment variable LoggerFromEnv reads.
const EnvLog = "VIACODEC_LOG"

// LoggerFromEnv returns the logger $VIACODEC_LOG asks for: text records on
// stderr from the level it names (debug, info, warn or error, in any case),
// or, when it is unset or names no level, a logger that discards
// everything. A library loaded by a foreign program uses it, so that it
// stays quiet unless asked.
func LoggerFromEnv() *slog.Logger {
	var level slog.Level
	switch strings.ToLower(os.Getenv(EnvLog)) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
