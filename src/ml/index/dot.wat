;; Inner product of two f32 vectors with WebAssembly SIMD (f32x4), 16 floats per iteration.
;; Compiled with `wat2wasm dot.wat` (SIMD is on by default) (wabt 1.0.32); the bytes are embedded in
;; simd.ts as base64. The memory is imported so each VectorStore owns its own.
(module
  (import "env" "memory" (memory 1))
  (func (export "dot") (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local $end i32) (local $tail i32) (local $s f32)
    (local.set $end
      (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
        (local.set $acc0 (f32x4.add (local.get $acc0)
          (f32x4.mul (v128.load (local.get $a)) (v128.load (local.get $b)))))
        (local.set $acc1 (f32x4.add (local.get $acc1)
          (f32x4.mul (v128.load offset=16 (local.get $a)) (v128.load offset=16 (local.get $b)))))
        (local.set $acc2 (f32x4.add (local.get $acc2)
          (f32x4.mul (v128.load offset=32 (local.get $a)) (v128.load offset=32 (local.get $b)))))
        (local.set $acc3 (f32x4.add (local.get $acc3)
          (f32x4.mul (v128.load offset=48 (local.get $a)) (v128.load offset=48 (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 64)))
        (local.set $b (i32.add (local.get $b) (i32.const 64)))
        (br $loop)))
    (local.set $tail (i32.and (local.get $n) (i32.const 15)))
    (block $tdone
      (loop $tloop
        (br_if $tdone (i32.eqz (local.get $tail)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.load (local.get $a)) (f32.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (local.set $tail (i32.sub (local.get $tail) (i32.const 1)))
        (br $tloop)))
    (local.set $acc0 (f32x4.add (f32x4.add (local.get $acc0) (local.get $acc1))
                                (f32x4.add (local.get $acc2) (local.get $acc3))))
    (f32.add (local.get $s)
      (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
        (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0)))))))
