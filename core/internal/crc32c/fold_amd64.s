#include "textflag.h"

// Each fold below moves 128-bit lanes forward over a distance: a lane's
// halves times the distance's multipliers (consts), xored into the lane
// that far ahead. Four registers of four lanes fold 256 bytes per step;
// then the registers fold into one (64 bytes apart), it folds over the
// rest 64 bytes at a time, and its lanes fold into one (16 bytes apart),
// whose CRC, from a zero register, is the CRC of all of p.

// func fold(s uint32, p []byte) uint32
TEXT ·fold(SB), NOSPLIT, $0-36
	MOVL s+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX

	VMOVDQU64 ·consts+0(SB), Z8   // 256 bytes
	VMOVDQU64 ·consts+64(SB), Z9  // 64 bytes
	VMOVDQU   ·consts+128(SB), X10 // 16 bytes

	VMOVDQU64 0(SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VMOVD     AX, X12 // the register, xored into the first 4 bytes
	VPXORQ    Z12, Z0, Z0
	ADDQ      $256, SI
	SUBQ      $256, CX

loop256:
	CMPQ CX, $256
	JB   fold4
	VMOVDQU64  0(SI), Z4
	VMOVDQU64  64(SI), Z5
	VMOVDQU64  128(SI), Z6
	VMOVDQU64  192(SI), Z7
	VPCLMULQDQ $0x00, Z8, Z0, Z12
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPCLMULQDQ $0x00, Z8, Z1, Z13
	VPCLMULQDQ $0x11, Z8, Z1, Z1
	VPCLMULQDQ $0x00, Z8, Z2, Z14
	VPCLMULQDQ $0x11, Z8, Z2, Z2
	VPCLMULQDQ $0x00, Z8, Z3, Z15
	VPCLMULQDQ $0x11, Z8, Z3, Z3
	VPTERNLOGD $0x96, Z4, Z12, Z0
	VPTERNLOGD $0x96, Z5, Z13, Z1
	VPTERNLOGD $0x96, Z6, Z14, Z2
	VPTERNLOGD $0x96, Z7, Z15, Z3
	ADDQ       $256, SI
	SUBQ       $256, CX
	JMP        loop256

fold4:
	VPCLMULQDQ $0x00, Z9, Z0, Z12
	VPCLMULQDQ $0x11, Z9, Z0, Z0
	VPTERNLOGD $0x96, Z12, Z0, Z1
	VPCLMULQDQ $0x00, Z9, Z1, Z12
	VPCLMULQDQ $0x11, Z9, Z1, Z1
	VPTERNLOGD $0x96, Z12, Z1, Z2
	VPCLMULQDQ $0x00, Z9, Z2, Z12
	VPCLMULQDQ $0x11, Z9, Z2, Z2
	VPTERNLOGD $0x96, Z12, Z2, Z3

loop64:
	CMPQ CX, $64
	JB   lanes
	VMOVDQU64  0(SI), Z4
	VPCLMULQDQ $0x00, Z9, Z3, Z12
	VPCLMULQDQ $0x11, Z9, Z3, Z3
	VPTERNLOGD $0x96, Z4, Z12, Z3
	ADDQ       $64, SI
	SUBQ       $64, CX
	JMP        loop64

lanes:
	VEXTRACTI32X4 $1, Z3, X4
	VEXTRACTI32X4 $2, Z3, X5
	VEXTRACTI32X4 $3, Z3, X6
	VPCLMULQDQ    $0x00, X10, X3, X12
	VPCLMULQDQ    $0x11, X10, X3, X3
	VPTERNLOGD    $0x96, X12, X3, X4
	VPCLMULQDQ    $0x00, X10, X4, X12
	VPCLMULQDQ    $0x11, X10, X4, X4
	VPTERNLOGD    $0x96, X12, X4, X5
	VPCLMULQDQ    $0x00, X10, X5, X12
	VPCLMULQDQ    $0x11, X10, X5, X5
	VPTERNLOGD    $0x96, X12, X5, X6

	XORL    AX, AX
	VMOVQ   X6, BX
	CRC32Q  BX, AX
	VPEXTRQ $1, X6, BX
	CRC32Q  BX, AX
	VZEROUPPER
	MOVL    AX, ret+32(FP)
	RET
