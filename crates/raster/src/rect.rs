//! Canvas-space integer rectangles.

use serde::{Deserialize, Serialize};

/// An axis-aligned rectangle in canvas pixels: `x..x+width` × `y..y+height`.
///
/// Coordinates are signed because layers may be offset partly outside the canvas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }

    /// The rectangle `0..width` × `0..height`.
    pub const fn from_size(width: u32, height: u32) -> Self {
        Self { x: 0, y: 0, width, height }
    }

    /// The rectangle spanning `x0..x1` × `y0..y1`; empty if the bounds are reversed.
    pub fn from_bounds(x0: i32, y0: i32, x1: i32, y1: i32) -> Self {
        let width = u32::try_from(i64::from(x1) - i64::from(x0)).unwrap_or(0);
        let height = u32::try_from(i64::from(y1) - i64::from(y0)).unwrap_or(0);
        if width == 0 || height == 0 {
            Self { x: x0, y: y0, width: 0, height: 0 }
        } else {
            Self { x: x0, y: y0, width, height }
        }
    }

    /// One past the right edge.
    pub fn right(&self) -> i32 {
        self.x.saturating_add_unsigned(self.width)
    }

    /// One past the bottom edge.
    pub fn bottom(&self) -> i32 {
        self.y.saturating_add_unsigned(self.height)
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.x && y >= self.y && x < self.right() && y < self.bottom()
    }

    /// The overlap of two rectangles (empty if they do not overlap).
    pub fn intersect(&self, other: &Rect) -> Rect {
        Rect::from_bounds(
            self.x.max(other.x),
            self.y.max(other.y),
            self.right().min(other.right()),
            self.bottom().min(other.bottom()),
        )
    }

    /// The smallest rectangle containing both; an empty operand is ignored.
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        Rect::from_bounds(
            self.x.min(other.x),
            self.y.min(other.y),
            self.right().max(other.right()),
            self.bottom().max(other.bottom()),
        )
    }

    /// Moved by `(dx, dy)`.
    pub fn translated(&self, dx: i32, dy: i32) -> Rect {
        Rect { x: self.x.saturating_add(dx), y: self.y.saturating_add(dy), ..*self }
    }

    /// Grown by `by` pixels on every side (shrunk if negative).
    pub fn inflated(&self, by: i32) -> Rect {
        Rect::from_bounds(
            self.x.saturating_sub(by),
            self.y.saturating_sub(by),
            self.right().saturating_add(by),
            self.bottom().saturating_add(by),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersect_and_union() {
        let a = Rect::new(0, 0, 10, 10);
        let b = Rect::new(5, -5, 10, 10);
        assert_eq!(a.intersect(&b), Rect::new(5, 0, 5, 5));
        assert_eq!(a.union(&b), Rect::new(0, -5, 15, 15));
        assert!(a.intersect(&Rect::new(20, 20, 1, 1)).is_empty());
        assert_eq!(Rect::default().union(&a), a);
    }

    #[test]
    fn inflate_and_contains() {
        let r = Rect::new(2, 2, 4, 4).inflated(1);
        assert_eq!(r, Rect::new(1, 1, 6, 6));
        assert!(r.contains(1, 1) && !r.contains(7, 7));
        assert!(Rect::new(0, 0, 2, 2).inflated(-1).is_empty());
    }
}
