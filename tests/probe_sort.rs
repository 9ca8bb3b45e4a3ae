use wgrad::prelude::*;
#[test]
fn probe() {
    let x = Tensor::randn([1 << 20], 1);
    x.realize();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        x.argsort(0).realize();
        wgrad::synchronize();
        println!("argsort {:?}", t.elapsed());
    }
    let idx = x.argsort(0);
    idx.realize();
    let t = std::time::Instant::now();
    x.take_along_axis(&idx, 0).realize();
    wgrad::synchronize();
    println!("gather {:?}", t.elapsed());
}
