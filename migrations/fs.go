package migrations

import "io/fs"

func mustSub() fs.FS {
	sub, err := fs.Sub(files, "sql")
	if err != nil {
		// The folder is embedded at build time; its absence is a build defect.
		panic(err)
	}
	return sub
}
