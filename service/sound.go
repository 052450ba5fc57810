package service

import (
	"bytes"
	"encoding/binary"
	"math"
)

// defaultSound is the built-in notification: a short two-tone chime, 16-bit mono WAV,
// made at start-up so no binary file lives in the repository.
var defaultSound = chime()

func chime() []byte {
	const rate = 8000
	var pcm []int16
	for _, tone := range []struct{ hz, ms float64 }{{880, 120}, {1320, 180}} {
		n := int(rate * tone.ms / 1000)
		for i := 0; i < n; i++ {
			fade := 1 - float64(i)/float64(n)
			pcm = append(pcm, int16(12000*fade*math.Sin(2*math.Pi*tone.hz*float64(i)/rate)))
		}
	}
	var b bytes.Buffer
	data := len(pcm) * 2
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(rate * 2), uint16(2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(data))
	_ = binary.Write(&b, binary.LittleEndian, pcm)
	return b.Bytes()
}
