//! Cases the generator found, shrunk, kept as regular tests once fixed.

#[allow(unused_imports)]
use crate::checks::{Case, Check, Skip, run_case};
#[allow(unused_imports)]
use crate::program::{Bin, Cum, Mv, Op, Program, Red, Un};

/// Found by seed 4: `while_loop` ran eagerly, realizing its initial carry (a `cummax`) in the
/// middle of the program; the reference then compared that float32 leaf with its own float64
/// recomputation of the same values (`where(a > b, ..)` at exact ties) and took the other
/// branch. The loop is now a node like any other, so the reference evaluates the whole
/// program in float64 (and the device the whole of it in float32).
#[test]
fn a_while_loop_does_not_realize_the_graph_around_it() {
    crate::common::setup();
    let program = Program {
        input: vec![5, 1],
        limit: 4096,
        ops: vec![
            Op::Bin(Bin::Pow, 0, 0),
            Op::Cum(Cum::Max, 1, 0, true),
            Op::Select(2, 1, 1),
            Op::Un(Un::Relu, 2),
            Op::Move(Mv::Pad, 4, 4),
            Op::Matmul(4, 1),
            Op::Bin(Bin::Pow, 5, 3),
            Op::Matmul(7, 7),
            Op::While(2, 8, 1),
            Op::Bin(Bin::Div, 9, 8),
        ],
    };
    for (check, data) in [(Check::Jvp, 8013), (Check::Jit, 3193), (Check::Value, 3214)] {
        let case = Case {
            program: program.clone(),
            check,
            policy: 0,
            data,
        };
        assert_eq!(run_case(&case), Ok(None), "{check:?}");
    }
}

/// Not a wgrad bug (seed 30181): a scan's carry converges, so every row of the Gram matrix
/// holds large, nearly equal entries (about 2,600), and the softmax of such logits, and more so
/// its tangent, loses float32's digits to cancellation (6 % of the tangent's largest element).
/// The reference with every node's value moved by 16 ulps moves as much: judged "decided by
/// rounding", not failed.
#[test]
fn a_softmax_of_large_nearly_equal_logits() {
    crate::common::setup();
    let program = Program {
        input: vec![65, 63],
        limit: 8190,
        ops: vec![
            Op::Scan(0, 0, 0, false),
            Op::Sort(1),
            Op::Matmul(1, 1),
            Op::Softmax(3, 2),
        ],
    };
    let case = Case {
        program,
        check: Check::Jvp,
        policy: 0,
        data: 1017,
    };
    assert_eq!(run_case(&case), Ok(Some(Skip::Rounding)));
}
